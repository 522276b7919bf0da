"""Receipt pages, PDFs and the next-head promise of a pending receipt."""

import io
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.utils import timezone
from pypdf import PdfReader

from compensation.log_keys import log_verifier
from compensation.models import IncidentKind, IncidentScope, LedgerEntry
from compensation.receipts import next_head_due
from compensation.services.credit import compensation_credit
from compensation.services.incidents import incident_declare
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tests.conftest import T0
from members.tests.factories import MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)


def _credit(member, key, *, minutes=12, offset=0, source_kind="disconnect", source_ref=None):
    start = T0 + timedelta(minutes=offset)
    return compensation_credit(
        member_id=member.pk,
        intervals=[(start, start + timedelta(minutes=minutes))],
        source_kind=source_kind,
        source_ref=source_ref or key,
        idempotency_key=key,
        now=NOW,
    ).entry


@pytest.fixture
def entry(member_user):
    return _credit(member_user.member, "mine")


def _speaking(client, language):
    """Switch language the way a member does (saved on a signed-in member)."""
    client.post("/i18n/setlang/", {"language": language, "next": "/"})
    return client


def _english(client):
    return _speaking(client, "en")


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_member_reads_their_receipt_page(member_client, member_user, entry):
    other = MemberFactory(membership__expires_at=T0 + timedelta(days=30)).member
    _credit(other, "other")  # takes seq 2: the member's next entry is #3
    second = _credit(member_user.member, "mine-2", offset=60, minutes=7)
    ledger_publish_head(now=NOW)
    response = _english(member_client).get(f"/my/compensation/{second.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Credit for your disconnect" in html
    assert "+7 min" in html
    assert second.hash in html and second.prev_hash in html
    # Every member's first entry is their opening balance.
    own = LedgerEntry.objects.filter(member=member_user.member).count()
    assert f"{own} of your {own} entries" in html
    assert f"#{second.seq} of {second.seq} entries" in html
    assert f"Included in published head #{second.seq}" in html
    # The in-browser check reads the version 2 receipt (the transparency log)
    # and checks its checkpoint with the verifier key the page embeds.
    assert f'data-receipt-url="/my/compensation/{second.public_id}/receipt.json"' in html
    assert f'data-log-keys="{log_verifier().vkey}"' in html
    assert response["Cache-Control"] == "private, no-store"


def test_the_receipt_page_speaks_chinese_by_default(member_client, entry):
    html = member_client.get(f"/my/compensation/{entry.public_id}/").content.decode()
    assert "补偿凭证" in html
    assert "个人掉线" in html


def test_someone_elses_receipt_is_not_found_in_any_form(client, entry):
    client.force_login(MemberFactory())
    for suffix in ("", "receipt.json", "receipt.pdf"):
        assert client.get(f"/my/compensation/{entry.public_id}/{suffix}").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, entry):
    for suffix in ("", "receipt.json", "receipt.pdf"):
        response = client.get(f"/my/compensation/{entry.public_id}/{suffix}")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_staff_need_the_view_permission_to_read_a_members_receipt(client, entry):
    staff = StaffFactory()
    client.force_login(staff)
    assert client.get(f"/my/compensation/{entry.public_id}/").status_code == 404
    staff.user_permissions.add(
        Permission.objects.get(codename="view_ledgerentry", content_type__app_label="compensation")
    )
    client.force_login(staff)
    response = _english(client).get(f"/my/compensation/{entry.public_id}/")
    assert response.status_code == 200
    assert "as staff" in response.content.decode()
    assert client.get(f"/my/compensation/{entry.public_id}/receipt.json").status_code == 200


def test_an_unknown_receipt_id_is_not_found(member_client):
    assert member_client.get("/my/compensation/not-a-uuid/").status_code == 404
    missing = "/my/compensation/6f1c1b7e-4a39-4c4e-9d55-0b1f4e0e0c11/"
    assert member_client.get(missing).status_code == 404


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-hans", ["补偿凭证", "会员编号", "个人掉线", "补偿政策版本"]),
        ("en", ["Compensation receipt", "Member number", "Credit for your disconnect"]),
    ],
)
def test_the_pdf_receipt_carries_the_text_in_the_readers_language(
    member_client, member_user, entry, language, expected
):
    ledger_publish_head(now=NOW)
    _speaking(member_client, language)
    response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = _pdf_text(response.content)
    for phrase in expected:
        assert phrase in text, phrase
    assert member_user.member.member_no in text
    # Hashes are set in a monospace font; pdf text may wrap them, not alter them.
    assert entry.hash in re.sub(r"\s", "", text)


def test_the_pdf_embeds_the_noto_font(member_client, entry):
    content = member_client.get(f"/my/compensation/{entry.public_id}/receipt.pdf").content
    fonts = set()
    for page in PdfReader(io.BytesIO(content)).pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert any("NotoSansCJKsc" in name for name in fonts), fonts


@override_settings(RECEIPT_PDF_FONT="/nonexistent/NotoSansCJK-Regular.ttc")
def test_a_missing_cjk_font_is_a_clear_503_not_a_crash(member_client, entry, caplog):
    response = _english(member_client).get(f"/my/compensation/{entry.public_id}/receipt.pdf")
    assert response.status_code == 503
    assert "missing the font" in response.content.decode()
    assert "fonts-noto-cjk" in caplog.text


def test_a_maintenance_credit_is_called_maintenance_everywhere(member_client, member_user):
    incident = incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=T0,
        ended_at=T0 + timedelta(minutes=30),
        ratio=None,
        title_zh="数据库升级",
        title_en="Database upgrade",
        actor=None,
        now=T0,
    )
    entry = _credit(
        member_user.member,
        "maint",
        minutes=30,
        source_kind="incident",
        source_ref=str(incident.public_id),
    )
    listing = member_client.get("/my/compensation/").content.decode()
    receipt = member_client.get(f"/my/compensation/{entry.public_id}/").content.decode()
    for html in (listing, receipt):
        assert "维护" in html and "数据库升级" in html
        assert "故障" not in html
    assert f"/status/{incident.public_id}/" in receipt


def test_every_credit_on_my_compensation_links_to_its_receipt(member_client, member_user):
    entries = [_credit(member_user.member, f"k{i}", offset=i * 30) for i in range(3)]
    MemberFactory()  # someone else's entries never show
    html = member_client.get("/my/compensation/").content.decode()
    links = re.findall(r'href="(/my/compensation/[0-9a-f-]+/)" data-testid="credit-link"', html)
    assert links == [f"/my/compensation/{e.public_id}/" for e in reversed(entries)]
    # The member's own numbering is 4, 3, 2, 1 (newest first; 1 is the opening
    # balance), the global seq secondary.
    assert re.findall(r'<span class="own-no">(\d+)</span>', html) == ["4", "3", "2", "1"]


def test_a_pending_receipt_says_when_the_next_head_is_due(member_client, member_user):
    first = _credit(member_user.member, "first")
    published_at = NOW
    ledger_publish_head(now=published_at)
    with time_machine.travel(published_at + timedelta(seconds=20), tick=False):
        pending = _credit(member_user.member, "second", offset=60)
        receipt = member_client.get(
            f"/my/compensation/{pending.public_id}/receipt.json?version=1"
        ).json()
        v2 = member_client.get(f"/my/compensation/{pending.public_id}/receipt.json").json()
        page = (
            _english(member_client).get(f"/my/compensation/{pending.public_id}/").content.decode()
        )
    assert receipt["published_head"] is None
    due = published_at + timedelta(minutes=1)  # heads and checkpoints: every minute
    assert receipt["next_head_due"] == due.isoformat()
    # Version 2: not yet in a signed checkpoint, and when the next one is due.
    assert v2["receipt_version"] == 2 and v2["log"] is None
    assert v2["next_checkpoint_due"] == due.isoformat()
    local_due = timezone.localtime(due).strftime("%Y-%m-%d %H:%M")
    assert f"The next head is due by {local_due}" in page
    # The earlier entry is covered, and its receipt has no promise to keep.
    covered = member_client.get(f"/my/compensation/{first.public_id}/receipt.json?version=1")
    assert covered.json()["published_head"]["seq"] == first.seq
    assert "next_head_due" not in covered.json()
    covered = member_client.get(f"/my/compensation/{first.public_id}/receipt.json").json()
    assert covered["log"]["index"] == first.seq - 1
    assert "next_checkpoint_due" not in covered


def test_next_head_due_counts_whole_intervals_from_the_last_head(db):
    _credit(MemberFactory().member, "a")
    ledger_publish_head(now=NOW)
    # Quiet minutes publish nothing new, so the last head can be minutes old.
    later = NOW + timedelta(minutes=2, seconds=5)
    assert next_head_due(now=later) == NOW + timedelta(minutes=3)
    assert next_head_due(now=NOW) == NOW + timedelta(minutes=1)


def test_next_head_due_without_any_head_is_one_interval_away(db):
    assert next_head_due(now=NOW) == NOW + timedelta(minutes=1)


@override_settings(CELERY_BEAT_SCHEDULE={})
def test_no_schedule_means_no_promise(db):
    assert next_head_due(now=NOW) is None


def test_the_ledger_page_explains_entries_after_the_last_head(client):
    members = [MemberFactory().member for _ in range(2)]
    for i in range(5):
        _credit(members[i % 2], f"e{i}", offset=i * 20)
    ledger_publish_head(now=NOW)
    published = LedgerEntry.objects.count()  # the five credits and the openings
    _credit(members[0], "late", offset=200)
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        html = _english(client).get("/ledger/").content.decode()
    assert re.search(rf'data-testid="ledger-count">{published + 1}<', html)
    assert re.search(rf'data-testid="ledger-published-count">{published}<', html)
    assert "chain is 1 entry ahead of it" in html
    assert '<a href="/ledger/chain.json" data-testid="chain-json"><code>' in html
    # The in-browser file check verifies checkpoints with the key the page shows.
    assert f'data-log-keys="{log_verifier().vkey}"' in html


def test_chain_json_lists_the_head_a_receipt_names_even_when_old(client):
    member = MemberFactory().member
    old = _credit(member, "old")
    ledger_publish_head(now=NOW)
    for i in range(11):
        _credit(member, f"n{i}", offset=30 + i * 20)
        ledger_publish_head(now=NOW + timedelta(hours=i + 1))
    heads = client.get(f"/ledger/chain.json?after=0&through={old.seq}").json()["published_heads"]
    assert {"seq": old.seq}.items() <= next(h for h in heads if h["seq"] == old.seq).items()
    assert json.dumps(heads).count(f'"seq": {old.seq},') == 1


def test_receipts_of_every_entry_name_their_entry(member_client, member_user, entry):
    body = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json").json()
    assert body["entry"]["id"] == str(entry.public_id)
    assert LedgerEntry.objects.get(public_id=entry.public_id).seq == body["entry"]["seq"]


def test_staff_reach_the_receipt_page_from_the_ledger_admin(client, entry):
    staff = StaffFactory()
    staff.user_permissions.add(
        Permission.objects.get(codename="view_ledgerentry", content_type__app_label="compensation")
    )
    client.force_login(staff)
    listing = client.get("/admin/compensation/ledgerentry/")
    assert listing.status_code == 200
    assert f'href="/my/compensation/{entry.public_id}/"' in listing.content.decode()


def test_chain_json_refuses_numbers_beyond_the_sequence_range(client):
    assert client.get("/ledger/chain.json?after=99999999999999999999").status_code == 400
    assert client.get(f"/ledger/chain.json?after=0&through={2**63}").status_code == 400
    assert client.get(f"/ledger/chain.json?after={2**63 - 2}").status_code == 200


def test_the_receipt_links_to_its_cause_and_survives_an_odd_reference(member_client, member_user):
    appeal_entry = _credit(
        member_user.member,
        "ap",
        source_kind="appeal",
        source_ref="6f1c1b7e-4a39-4c4e-9d55-0b1f4e0e0c11",
    )
    odd = _credit(member_user.member, "odd", offset=90, source_kind="appeal", source_ref="legacy-7")
    html = member_client.get(f"/my/compensation/{appeal_entry.public_id}/").content.decode()
    assert 'href="/appeals/6f1c1b7e-4a39-4c4e-9d55-0b1f4e0e0c11/"' in html
    assert member_client.get(f"/my/compensation/{odd.public_id}/").status_code == 200
