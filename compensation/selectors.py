"""Reads shared by pages, the member API and admin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet, Sum
from django.shortcuts import get_object_or_404

from members.models import MemberProfile

from .models import (
    Claim,
    Coupon,
    Disconnect,
    DisconnectStatus,
    Incident,
    IncidentStatus,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerKind,
    Policy,
)


def member_disconnects(*, member: MemberProfile) -> QuerySet[Disconnect]:
    return (
        Disconnect.objects.filter(member=member)
        .select_related("node", "incident")
        .order_by("-started_at")
    )


def member_ledger(*, member: MemberProfile) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(member=member).select_related("reverses").order_by("-seq")


def credited_in_cap_window(*, member_id: int, now: datetime, policy: Policy) -> int:
    """Minutes credited to the member inside the policy's rolling cap window
    (the "already credited" the 30-day cap is applied against)."""
    since = now - timedelta(days=policy.cap_window_days)
    return (
        Claim.objects.filter(member_id=member_id, created_at__gt=since).aggregate(
            total=Sum("credited_minutes")
        )["total"]
        or 0
    )


@dataclass(frozen=True)
class CapUsage:
    used_minutes: int
    cap_minutes: int
    window_days: int

    @property
    def left_minutes(self) -> int:
        return max(self.cap_minutes - self.used_minutes, 0)

    @property
    def percent(self) -> int:
        if self.cap_minutes <= 0:
            return 100
        return min(round(100 * self.used_minutes / self.cap_minutes), 100)

    @property
    def percent_label(self) -> str:
        """ "<1" rather than a misleading 0 once anything was used."""
        return "<1" if self.used_minutes and self.percent == 0 else str(self.percent)


def member_cap_usage(*, member: MemberProfile, now: datetime, policy: Policy) -> CapUsage:
    return CapUsage(
        used_minutes=credited_in_cap_window(member_id=member.pk, now=now, policy=policy),
        cap_minutes=policy.cap_window_minutes,
        window_days=policy.cap_window_days,
    )


def member_credited_since(*, member: MemberProfile, since: datetime) -> int:
    """Minutes of compensation credited since ``since`` (decisions, not purchases)."""
    return (
        Claim.objects.filter(member=member, created_at__gte=since).aggregate(
            total=Sum("credited_minutes")
        )["total"]
        or 0
    )


def member_coupons(*, member: MemberProfile) -> QuerySet[Coupon]:
    return Coupon.objects.filter(member=member).order_by("-issued_at")


def appeal_deadline(*, disconnect: Disconnect, policy: Policy) -> datetime | None:
    """Appeals are open until the policy's window after the disconnect ends."""
    if disconnect.status != DisconnectStatus.CLOSED or disconnect.ended_at is None:
        return None
    return policy.appeal_deadline(disconnect.ended_at)


def public_incidents() -> QuerySet[Incident]:
    return (
        Incident.objects.exclude(status=IncidentStatus.CANCELLED)
        .prefetch_related("nodes")
        .order_by("-started_at")
    )


def published_heads(limit: int = 30) -> QuerySet[LedgerCheckpoint]:
    return LedgerCheckpoint.objects.order_by("-published_at")[:limit]


def latest_published_head() -> LedgerCheckpoint | None:
    return LedgerCheckpoint.objects.order_by("-published_at").first()


def receipt_entry(*, user, public_id) -> LedgerEntry:
    """The ledger entry behind a receipt, for its own member or for staff
    allowed to view ledger entries. Anybody else gets "not found", not
    "forbidden": a receipt id reveals nothing about whether it exists."""
    entries = LedgerEntry.objects.select_related("member", "reverses")
    if not user.has_perm("compensation.view_ledgerentry"):
        entries = entries.filter(member__user=user)
    return get_object_or_404(entries, public_id=public_id)


def member_card_key_entry(*, member: MemberProfile, public_id: str) -> LedgerEntry | None:
    """The member's own card-key entry behind ``public_id``, or None: for
    anybody else's id, or text that is no id at all, the same None."""
    try:
        uuid.UUID(public_id)
    except ValueError:
        return None
    return LedgerEntry.objects.filter(
        member=member, kind=LedgerKind.CARD_KEY, public_id=public_id
    ).first()


def chain_links(*, after: int, through: int) -> QuerySet:
    """``(seq, body_digest, hash)`` of the entries in ``(after, through]``."""
    return (
        LedgerEntry.objects.filter(seq__gt=after, seq__lte=through)
        .order_by("seq")
        .values_list("seq", "body_digest", "hash")
    )


def heads_published_in(*, after: int, through: int, limit: int = 100) -> QuerySet[LedgerCheckpoint]:
    return LedgerCheckpoint.objects.filter(seq__gt=after, seq__lte=through).order_by(
        "-published_at"
    )[:limit]


def member_entry_number(*, entry: LedgerEntry) -> tuple[int, int]:
    """(position of the entry among its member's own entries, their count):
    the member's 1..n, where the global ``seq`` has gaps for other members."""
    own = LedgerEntry.objects.filter(member_id=entry.member_id)
    return own.filter(seq__lte=entry.seq).count(), own.count()


def incidents_by_ref(refs) -> dict[str, Incident]:
    """Incidents named by ledger ``source_ref`` (their public id), for the
    labels (outage or maintenance) and links of credited incidents."""
    ids = {ref for ref in refs if ref}
    valid = []
    for ref in ids:
        try:
            valid.append(uuid.UUID(ref))
        except ValueError:
            continue
    return {str(i.public_id): i for i in Incident.objects.filter(public_id__in=valid)}


def head_covering(*, seq: int) -> LedgerCheckpoint | None:
    """The first published head at or after ``seq``: where a receipt's chain
    walk ends."""
    return LedgerCheckpoint.objects.filter(seq__gte=seq).order_by("seq", "published_at").first()


def chain_digests(*, after_seq: int, through_seq: int) -> list[str]:
    return list(
        LedgerEntry.objects.filter(seq__gt=after_seq, seq__lte=through_seq)
        .order_by("seq")
        .values_list("body_digest", flat=True)
    )


def ledger_metrics() -> dict[str, tuple[str, float]]:
    """Ledger totals for /metrics. Gauges (recomputed from the ledger, and a
    reversal lowers them), so not named _total; time in seconds."""
    totals = LedgerEntry.objects.aggregate(minutes=Sum("minutes"), entries=Count("pk"))
    return {
        "kamen_compensation_credited_seconds": (
            "Net membership time credited through the ledger, in seconds.",
            (totals["minutes"] or 0) * 60,
        ),
        "kamen_ledger_entries": ("Ledger entries.", totals["entries"] or 0),
    }
