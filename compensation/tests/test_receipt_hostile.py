"""Hostile text in a printed receipt (issue 20, item 10): ReportLab's
Paragraph takes a markup language (<para>, <font>, <a href>, <img>), so every
value must reach it as text, and characters that only make sense to a
terminal or a bidi engine must not reach it at all."""

import dataclasses
import io
import re
import unicodedata
from datetime import timedelta

import pytest
from pypdf import PdfReader

from compensation.models import IncidentKind, IncidentScope
from compensation.receipt_pdf import printable, receipt_pdf
from compensation.receipts import receipt_facts
from compensation.services.credit import compensation_credit
from compensation.services.incidents import incident_declare
from compensation.tests.conftest import T0

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)

HOSTILE = {
    "script": "<script>window.__xss=1</script>",
    "img": "<img src=x onerror=alert(1)>",
    "js_link": '<a href="javascript:alert(1)">pay here</a>',
    "para": '<para autoLeading="max" fontSize="60">big</para>',
    "font": '<font color="red" size="40" face="Courier">red</font>',
    "link": '<a href="https://evil.example/phish">verify</a><link href="https://evil.example/">x</link>',
    "local_img": '<img src="/etc/passwd" width="10" height="10"/>',
    "entities": "&amp; &lt;b&gt; &#x41; &bogus; ]]>",
    "long": "W" * 2500,
    "rtl": "receipt\u202egnp.exe",
    "nul_ctl": "nul\x00bell\x07esc\x1b[31mdel\x7fend",
    "cjk": "卡盟补偿凭证测试：掉线四十分钟",
}


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _facts_with(value: str):
    member_entry = compensation_credit(
        member_id=_facts_with.member.pk,
        intervals=[(T0, T0 + timedelta(minutes=12))],
        source_kind="disconnect",
        source_ref=f"k-{len(value)}-{hash(value)}",
        idempotency_key=f"k-{len(value)}-{hash(value)}",
        now=NOW,
    ).entry
    facts = receipt_facts(member_entry, now=NOW)
    # Every free-text slot of the receipt at once.
    return dataclasses.replace(facts, summary=value, source=value)


@pytest.fixture
def facts_with(member_user):
    _facts_with.member = member_user.member
    return _facts_with


def _assert_inert(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    # No markup became a link, an action, a script or an embedded image.
    root = reader.trailer["/Root"]
    for key in ("/OpenAction", "/AA", "/Names", "/AcroForm"):
        assert key not in root, key
    for page in reader.pages:
        assert "/Annots" not in page
        assert "/AA" not in page
        assert "/XObject" not in page["/Resources"]
    text = _text(pdf)
    # Control, format (bidi overrides) and other invisible characters are gone.
    bad = [
        (i, ch)
        for i, ch in enumerate(text)
        if ch not in "\n " and unicodedata.category(ch)[0] == "C"
    ]
    assert not bad, (bad[:5], [text[max(0, i - 15) : i + 15] for i, _c in bad[:3]])
    return text


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_in_a_receipt_is_printed_as_text(facts_with, name):
    value = HOSTILE[name]
    pdf = receipt_pdf(
        facts_with(value),
        page_url="https://portal.example/r/",
        ledger_url="https://portal.example/l/",
    )
    text = re.sub(r"\s", "", _assert_inert(pdf))
    shown = re.sub(r"\s", "", printable(value))
    # The markup is shown literally, not interpreted (twice: summary, source).
    assert text.count(shown) >= 2 if len(shown) < 200 else shown[:100] in text


def test_printable_drops_only_invisible_characters():
    assert printable("a\x00b\x07c\u202ed\u200be\ufeff 中文 ok") == "abcde 中文 ok"
    assert printable("<a href='x'>") == "<a href='x'>"


def test_a_very_long_unbroken_value_wraps_on_one_page(facts_with):
    pdf = receipt_pdf(facts_with("W" * 2500), page_url="u", ledger_url="l")
    assert len(PdfReader(io.BytesIO(pdf)).pages) <= 3


def test_a_hostile_incident_title_reaches_the_pdf_as_text(member_client, member_user):
    """The end-to-end path: a staff-written incident title (the only free
    text a receipt carries besides our own words) in the member's PDF."""
    title = '<font size="40"><a href="javascript:x">\u202e付款</a></font>\x07'
    incident = incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=T0,
        ended_at=T0 + timedelta(minutes=30),
        ratio=None,
        title_zh=title,
        title_en=title,
        actor=None,
        now=T0,
    )
    entry = compensation_credit(
        member_id=member_user.member.pk,
        intervals=[(T0, T0 + timedelta(minutes=30))],
        source_kind="incident",
        source_ref=str(incident.public_id),
        idempotency_key="hostile-incident",
        now=NOW,
    ).entry
    response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.pdf")
    assert response.status_code == 200
    text = _assert_inert(response.content)
    assert '<font size="40"><a href="javascript:x">付款</a></font>' in text.replace("\n", "")


def test_receipts_in_two_languages_from_one_process_both_print_their_glyphs(
    member_client, member_user
):
    """ReportLab reused the first registered subset for every later font of
    the same face: after an English receipt, a Chinese one printed its
    Chinese characters as empty boxes (glyph 0)."""
    entry = compensation_credit(
        member_id=member_user.member.pk,
        intervals=[(T0, T0 + timedelta(minutes=12))],
        source_kind="disconnect",
        source_ref="two-languages",
        idempotency_key="two-languages",
        now=NOW,
    ).entry
    url = f"/my/compensation/{entry.public_id}/receipt.pdf"
    texts = {}
    for language, unique in (("en", "Ωmega"), ("zh-hans", "独一无二")):
        member_client.post("/i18n/setlang/", {"language": language, "next": "/"})
        # A character no other receipt of this run has, so each is a new subset.
        pdf = receipt_pdf(
            dataclasses.replace(receipt_facts(entry, now=NOW), summary=unique),
            page_url="u",
            ledger_url="l",
        )
        texts[language] = (_assert_inert(pdf), unique)
        texts[language + "-page"] = (_text(member_client.get(url).content), None)
    assert texts["en"][1] in texts["en"][0]
    assert texts["zh-hans"][1] in texts["zh-hans"][0]
    assert "补偿凭证" in texts["zh-hans-page"][0]
    assert "Compensation receipt" in texts["en-page"][0]
