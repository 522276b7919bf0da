"""Receipts a member can verify with a few lines of their own code, or in
the browser (static/js/receipt-verify.js reproduces the same hashing)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from .ledger import entry_body
from .models import (
    Incident,
    IncidentKind,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerHead,
    LedgerKind,
    SourceKind,
)
from .selectors import (
    chain_digests,
    head_covering,
    incidents_by_ref,
    latest_published_head,
    member_entry_number,
)
from .status import source_label
from .usage_explain import weighting_explanation

VERIFY_HOWTO = (
    "1. body_digest = sha256(canonical JSON of 'entry': keys sorted, separators ',' and ':', UTF-8). "
    "2. hash = sha256(prev_hash + ':' + body_digest). "
    "3. h = hash; for each d in chain_to_head: h = sha256(h + ':' + d). "
    "4. h must equal published_head.hash, which must also appear on the public ledger page /ledger/. "
    "If published_head is null the entry is newer than the last published head (next_head_due "
    "says when the next one is due): steps 1-2 still prove the entry intact; download the "
    "receipt again after that time."
)

# The beat entry that publishes heads (kamen_portal/settings.py).
PUBLISH_BEAT_KEY = "publish-ledger-head"


def publish_interval() -> timedelta | None:
    """How often a head is published, from the beat schedule; None when the
    schedule is not a plain interval (then no time can be promised)."""
    entry = getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get(PUBLISH_BEAT_KEY)
    schedule = entry and entry.get("schedule")
    if isinstance(schedule, timedelta):
        return schedule
    if isinstance(schedule, int | float) and schedule > 0:
        return timedelta(seconds=schedule)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return run_every if isinstance(run_every, timedelta) else None


def next_head_due(*, now: datetime) -> datetime | None:
    """When the next head should be published: beat runs the publisher every
    interval, so the next tick is the last published head plus a whole
    number of intervals (a tick with nothing new publishes nothing, which is
    why the last head can be several intervals old). With no head yet, at
    most one interval from now."""
    interval = publish_interval()
    if interval is None:
        return None
    latest = latest_published_head()
    if latest is None or latest.published_at > now:
        return now + interval
    ticks = math.floor((now - latest.published_at) / interval) + 1
    return latest.published_at + ticks * interval


def receipt_for(entry: LedgerEntry, *, now: datetime | None = None) -> dict:
    body = entry_body(
        entry,
        member_no=entry.member.member_no,
        reverses_seq=entry.reverses.seq if entry.reverses_id else None,
    )
    head = head_covering(seq=entry.seq)
    receipt = {
        "receipt_version": 1,
        "entry": body,
        "body_digest": entry.body_digest,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "published_head": (
            {"seq": head.seq, "hash": head.hash, "published_at": head.published_at.isoformat()}
            if head
            else None
        ),
        "chain_to_head": chain_digests(after_seq=entry.seq, through_seq=head.seq) if head else [],
        "how_to_verify": VERIFY_HOWTO,
    }
    if entry.weighting:
        # Outside the hashed body: the reader's sentence for the factor recorded in it.
        receipt["usage_weighting"] = {
            "factor": entry.weighting["factor"],
            "explanation": weighting_explanation(entry.weighting),
        }
    if head is None:
        due = next_head_due(now=now or timezone.now())
        receipt["next_head_due"] = due.isoformat() if due else None
    return receipt


@dataclass(frozen=True)
class ReceiptFacts:
    """What a receipt page and its PDF say about one entry, in words."""

    entry: LedgerEntry
    summary: str
    source: str
    incident: Incident | None
    own_number: int
    own_count: int
    chain_length: int
    head: LedgerCheckpoint | None
    next_head_due: datetime | None


def entry_summary(entry: LedgerEntry, *, incident: Incident | None = None) -> str:
    """The entry's kind in a sentence a member understands."""
    if entry.kind == LedgerKind.REVERSAL:
        seq = entry.reverses.seq if entry.reverses_id else "?"
        return _("Reversal of ledger entry #%(seq)s (a correction)") % {"seq": seq}
    if entry.kind == LedgerKind.ADJUSTMENT:
        if entry.minutes < 0:
            return _("Time taken back by staff")
        return _("Time added by staff")
    if entry.kind == LedgerKind.CREDIT:
        if entry.source_kind == SourceKind.DISCONNECT:
            return _("Credit for your disconnect")
        if entry.source_kind == SourceKind.APPEAL:
            return _("Credit from your approved appeal")
        if entry.source_kind == SourceKind.INCIDENT:
            if incident is not None and incident.kind == IncidentKind.MAINTENANCE:
                return _("Credit for maintenance")
            return _("Credit for an outage")
    return str(entry.get_kind_display())


def receipt_facts(entry: LedgerEntry, *, now: datetime) -> ReceiptFacts:
    incident = None
    if entry.source_kind == SourceKind.INCIDENT:
        incident = incidents_by_ref([entry.source_ref]).get(entry.source_ref)
    own_number, own_count = member_entry_number(entry=entry)
    head = head_covering(seq=entry.seq)
    chain = LedgerHead.objects.filter(pk=1).values_list("seq", flat=True).first() or entry.seq
    return ReceiptFacts(
        entry=entry,
        summary=entry_summary(entry, incident=incident),
        source=source_label(entry, {entry.source_ref: incident.kind} if incident else None),
        incident=incident,
        own_number=own_number,
        own_count=own_count,
        chain_length=chain,
        head=head,
        next_head_due=None if head else next_head_due(now=now),
    )
