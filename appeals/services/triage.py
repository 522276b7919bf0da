"""Matching a claim against what detection recorded and what was paid:
the suggestion staff see, and the bound of a reviewer's decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from compensation import intervals as iv
from compensation.models import Claim, Disconnect, Outcome, SourceKind
from compensation.services.credit import compensation_preview
from members.models import MemberProfile

from ..models import (
    Appeal,
    AppealStatus,
    EventKind,
)

# Claims may not reach into the future beyond clock skew, nor be absurdly long.
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
    fully = bool(credited_spans) and not iv.subtract([(start, end)], credited_spans)
    entry_ids = []
    if fully:
        refs = [f"disconnect:{d.public_id}" for d in overlapping]
        entry_ids = [
            str(c.entry.public_id)
            for c in Claim.objects.filter(
                idempotency_key__in=refs, entry__isnull=False
            ).select_related("entry")
        ]
    return Triage(
        disconnects=overlapping,
        fully_credited=fully,
        suggested_minutes=preview.calc.credited_minutes + withheld,
        entry_ids=entry_ids,
        bound_minutes=preview.calc.raw_minutes + withheld,
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
