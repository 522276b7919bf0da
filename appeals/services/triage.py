"""Matching a claim against what detection recorded and what was paid:
the suggestion staff see, and the bound of a reviewer's decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from compensation import intervals as iv
from compensation.models import (
    Claim,
    CoveredSpan,
    Disconnect,
    LedgerEntry,
    Outcome,
    SourceKind,
)
from compensation.services.credit import compensation_preview
from members.models import MemberProfile

from ..models import (
    Appeal,
    AppealStatus,
    EventKind,
)
from .common import _event


@dataclass
class Triage:
    disconnects: list[Disconnect]
    fully_credited: bool
    suggested_minutes: int
    entry_ids: list[str]
    # The claimed time not yet covered, under the ratio but before caps,
    # plus what caps withheld: the most a reviewer may credit.
    bound_minutes: int
    # What the member sees before uploading anything: the claimed span, the
    # part of it already credited (by any source), and the credits
    # (ledger entries) that touch it, for their receipts.
    claimed_minutes: int = 0
    covered_minutes: int = 0
    entries: list[LedgerEntry] | None = None


def appeal_triage(
    *, member: MemberProfile, start: datetime, end: datetime, now: datetime
) -> Triage:
    """What the portal recorded and credited for a claimed span, and what an
    appeal could still add (pure reads: the guided form shows it before any
    upload, filing stores it as the suggestion)."""
    return _triage(member, start, end, now=now)


def _triage(member: MemberProfile, start: datetime, end: datetime, *, now: datetime) -> Triage:
    """Match the claim against what detection recorded for this member."""
    overlapping = list(
        Disconnect.objects.filter(member=member, started_at__lt=end)
        .filter(Q(ended_at__gt=start) | Q(ended_at__isnull=True))
        .select_related("node")
        .order_by("started_at")
    )
    preview = compensation_preview(
        member_id=member.pk, intervals=[(start, end)], source_kind=SourceKind.APPEAL, now=now
    )
    withheld = sum(d.withheld_minutes for d in overlapping)
    credited_spans = [
        (d.started_at, d.ended_at)
        for d in overlapping
        if d.ended_at and d.outcome == Outcome.CREDITED and not d.withheld_minutes
    ]
    # Fully credited: detected and paid without caps, or (whatever paid it:
    # an incident, maintenance, an earlier appeal) nothing of the span inside
    # the paid membership is left uncovered and no cap withheld anything.
    fully = (bool(credited_spans) and not iv.subtract([(start, end)], credited_spans)) or (
        preview.outcome == Outcome.COVERED and not withheld
    )
    entries = list(
        LedgerEntry.objects.filter(
            member=member, covered_end__gt=start, covered_start__lt=end
        ).order_by("seq")[:20]
    )
    entry_ids = []
    if fully:
        refs = [f"disconnect:{d.public_id}" for d in overlapping]
        entry_ids = [
            str(c.entry.public_id)
            for c in Claim.objects.filter(
                idempotency_key__in=refs, entry__isnull=False
            ).select_related("entry")
        ] or [str(e.public_id) for e in entries if e.minutes > 0]
    claimed = iv.normalize([(start, end)])
    uncovered = iv.total_seconds(iv.subtract(claimed, _covered(member, start, end)))
    claimed_seconds = iv.total_seconds(claimed)
    return Triage(
        disconnects=overlapping,
        fully_credited=fully,
        suggested_minutes=preview.calc.credited_minutes + withheld,
        entry_ids=entry_ids,
        bound_minutes=preview.calc.raw_minutes + withheld,
        claimed_minutes=int(claimed_seconds + 59) // 60,
        covered_minutes=int(claimed_seconds - uncovered) // 60,
        entries=entries,
    )


def _covered(member: MemberProfile, start: datetime, end: datetime) -> list[iv.Interval]:
    """The parts of [start, end) the ledger already covers for ``member``."""
    return list(
        CoveredSpan.objects.filter(member=member, start__lt=end, end__gt=start).values_list(
            "start", "end"
        )
    )


def _auto_triage(appeal: Appeal, *, now: datetime) -> None:
    triage = _triage(appeal.member, appeal.claimed_start, appeal.claimed_end, now=now)
    system = {
        "disconnects": [
            {
                "id": str(d.public_id),
                "node": d.node.name,
                "start": d.started_at.isoformat(),
                "end": d.ended_at.isoformat() if d.ended_at else None,
                "outcome": d.outcome,
                "credited_minutes": d.credited_minutes,
                "withheld_minutes": d.withheld_minutes,
            }
            for d in triage.disconnects
        ],
        "entries": triage.entry_ids,
        "suggested_minutes": triage.suggested_minutes,
    }
    appeal.suggested_minutes = triage.suggested_minutes
    if triage.fully_credited:
        old = appeal.status
        appeal.status = AppealStatus.ALREADY_COMPENSATED
        appeal.decided_at = now
        appeal.first_response_at = now
        appeal.save(
            update_fields=[
                "status",
                "suggested_minutes",
                "decided_at",
                "first_response_at",
                "updated_at",
            ]
        )
        _event(appeal, EventKind.ALREADY_COMPENSATED, actor=None, now=now, old=old, data=system)
    else:
        appeal.save(update_fields=["suggested_minutes", "updated_at"])
        _event(appeal, EventKind.TRIAGED, actor=None, now=now, data=system)


def appeal_credit_bound(*, appeal: Appeal, now: datetime) -> int:
    """The most a reviewer may credit on ``appeal``: the claimed span's time
    not yet covered (under the policy's ratio, before caps), plus the minutes
    caps withheld from disconnects inside it, and never less than the
    suggestion shown when it was filed."""
    triage = _triage(appeal.member, appeal.claimed_start, appeal.claimed_end, now=now)
    return max(triage.bound_minutes, appeal.suggested_minutes)
