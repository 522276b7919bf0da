"""A printable receipt: the receipt page's facts as a one-page PDF, in the
reader's language, Chinese set in the system's Noto Sans CJK."""

from __future__ import annotations

import io
import unicodedata
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .pdf_font import register_cjk_font
from .receipts import ReceiptFacts
from .templatetags.kamen import minutes_human

MONO = "Courier"
# A free-text value longer than this (an incident title is at most 120
# characters; our own sentences far less) is cut, so no value can fill pages.
MAX_VALUE_CHARS = 600


def printable(text: str) -> str:
    """``text`` without the characters a page cannot show honestly: controls
    (NUL, ESC sequences), format characters (the bidi overrides that make
    "gnp.exe" read as "exe.png", zero-width marks), surrogates and
    unassigned code points. ReportLab has no bidi engine, so an override
    would only print as a box; in a receipt it is never meant."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def _markup(text: str) -> str:
    """Paragraph parses its text as markup (<para>, <font>, <a href>, <img>):
    every value goes in as escaped, printable text and nothing else."""
    text = printable(text)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return escape(text)


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def receipt_rows(facts: ReceiptFacts) -> list[tuple[str, str, bool]]:
    """(label, value, monospace) in reading order; the HTML page shows the
    same facts."""
    e = facts.entry
    sign = "+" if e.minutes > 0 else ""
    rows = [
        (_("Member number"), e.member.member_no, False),
        (_("What happened"), facts.summary, False),
        (
            _("Source"),
            facts.source + (f" · {facts.incident.title}" if facts.incident else ""),
            False,
        ),
        (_("Minutes"), sign + minutes_human(e.minutes), False),
    ]
    if e.covered_start and e.covered_end:
        span = f"{_when(e.covered_start)} – {_when(e.covered_end)}"
        rows.append((_("Covered time"), span, False))
    rows += [
        (_("Policy version"), f"v{e.policy_version}", False),
        (_("Expiry"), f"{_when(e.expires_before)} → {_when(e.expires_after)}", False),
        (_("Recorded at"), _when(e.created_at), False),
        (
            _("Your entry"),
            _("%(n)d of your %(count)d entries")
            % {"n": facts.own_number, "count": facts.own_count},
            False,
        ),
        (
            _("Chain position"),
            _("#%(seq)d of %(total)d entries in the public ledger (all members)")
            % {"seq": e.seq, "total": facts.chain_length},
            False,
        ),
        (_("Entry hash"), e.hash, True),
        (_("Previous hash"), e.prev_hash, True),
        (_("Content digest"), e.body_digest, True),
        (_("Published head"), head_status(facts), False),
    ]
    return rows


def head_status(facts: ReceiptFacts) -> str:
    if facts.head is not None:
        return _(
            "Included in published head #%(seq)d, published %(when)s (head hash %(hash)s…)."
        ) % {
            "seq": facts.head.seq,
            "when": _when(facts.head.published_at),
            "hash": facts.head.hash[:16],
        }
    if facts.next_head_due is not None:
        return _(
            "Not yet in a published head. The next head is due by %(when)s; "
            "the entry can be checked against it after that."
        ) % {"when": _when(facts.next_head_due)}
    return _("Not yet in a published head; check again later.")


def receipt_pdf(facts: ReceiptFacts, *, page_url: str, ledger_url: str) -> bytes:
    """Raises pdf_font.CJKFontMissing when the system font is absent."""
    title = _("Compensation receipt")
    rows = receipt_rows(facts)
    footer = _(
        "Verify this entry: open %(page)s and press “Verify”, or download the JSON receipt "
        "there and follow the steps on %(ledger)s."
    ) % {"page": page_url, "ledger": ledger_url}
    printed = _("%(portal)s · printed %(when)s") % {
        "portal": settings.PORTAL_NAME,
        "when": _when(timezone.now()),
    }
    text = printable(
        title + printed + footer + "".join(label + value for label, value, _mono in rows)
    )
    font = register_cjk_font(text)

    h1 = ParagraphStyle("h1", fontName=font, fontSize=18, leading=24, spaceAfter=1 * mm)
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK")
    label = ParagraphStyle("label", parent=body, textColor=colors.HexColor("#555555"))
    mono = ParagraphStyle("mono", parent=body, fontName=MONO, fontSize=8, leading=11)
    small = ParagraphStyle("small", parent=body, fontSize=8.5, leading=12)

    table = Table(
        [
            [Paragraph(_markup(lbl), label), Paragraph(_markup(val), mono if is_mono else body)]
            for lbl, val, is_mono in rows
        ],
        colWidths=[38 * mm, 132 * mm],
        # A row taller than the page (long text) splits instead of failing the build.
        splitInRow=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.25, colors.HexColor("#cccccc")),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{title} #{facts.entry.seq}",
        author="Kamen",
    )
    doc.build(
        [
            Paragraph(_markup(title), h1),
            Paragraph(_markup(printed), small),
            Spacer(1, 3 * mm),
            table,
            Spacer(1, 6 * mm),
            Paragraph(_markup(footer), small),
        ]
    )
    return out.getvalue()
