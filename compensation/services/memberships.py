"""Membership time that comes from outside compensation: the opening
balance, purchases and renewals, card keys, refunds and tier changes.

Invariants (DESIGN §4, "the ledger is the only way membership time moves"):
- every change of a member's expiry or tier here is one ledger entry,
  written in the same transaction as the member row, which is locked first
  (then the ledger head, inside ledger_append: the lock order of every
  writer);
- a member's first entry starts from nothing (``expires_before`` empty), so
  their expiry is the fold of their entries (compensation/ledger.py
  ``reconcile_expiries``);
- idempotency belongs to the caller's own row (a card key, a platform
  event), claimed in the same transaction: these functions move time every
  time they are called.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _

from members.models import MemberProfile, Tier

from .. import intervals as iv
from ..models import LedgerEntry, LedgerKind, SourceKind
from .chain import ledger_append
from .policy import policy_current

MINUTES_PER_DAY = 24 * 60
# No membership runs further ahead than this: a runaway sender (or a loop of
# purchases) is refused long before datetime arithmetic could overflow.
MAX_AHEAD = timedelta(days=100 * 366)

# Kinds that add time, and those that take it away.
_ADDING = {LedgerKind.PURCHASE, LedgerKind.RENEWAL, LedgerKind.CARD_KEY}


class MembershipError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def member_lock(*, member_id: int) -> MemberProfile:
    return MemberProfile.objects.select_for_update().get(pk=member_id)


def _append(
    member: MemberProfile,
    *,
    kind: str,
    minutes: int,
    after: datetime | None,
    tier: str,
    source_kind: str,
    source_ref: str,
    note: str,
    now: datetime,
) -> LedgerEntry:
    entry = LedgerEntry(
        member_id=member.pk,
        kind=kind,
        minutes=minutes,
        source_kind=source_kind,
        source_ref=source_ref[:64],
        policy_version=policy_current().version,
        expires_before=member.expires_at,
        expires_after=after,
        tier=tier,
        note=note[:300],
        created_at=now,
    )
    ledger_append([entry], member_nos={member.pk: member.member_no})
    fields = ["expires_at"]
    member.expires_at = after
    if tier and tier != member.tier:
        member.tier = tier
        fields.append("tier")
    member.save(update_fields=fields)
    return entry


def membership_open(
    *,
    member_id: int,
    expires_at: datetime,
    tier: str = "",
    source_ref: str = "opening",
    note: str = "",
    now: datetime,
) -> LedgerEntry | None:
    """State the opening balance of a member the ledger does not know yet:
    an entry from nothing to ``expires_at`` (which may lie in the past: a
    membership that already lapsed). Only for a member without entries and
    without time; returns None (and changes nothing) for any other member,
    so running it again is harmless."""
    if tier and tier not in Tier.values:
        raise MembershipError("invalid_tier", _("Unknown tier."))
    with transaction.atomic():
        member = member_lock(member_id=member_id)
        if member.expires_at is not None or LedgerEntry.objects.filter(member=member).exists():
            return None
        return _append(
            member,
            kind=LedgerKind.OPENING,
            minutes=0,
            after=expires_at,
            tier=tier,
            source_kind=SourceKind.OPENING,
            source_ref=source_ref,
            note=note,
            now=now,
        )


def membership_open_many(
    *, expires: dict[int, datetime], tier: str = "", source_ref: str = "opening", now: datetime
) -> int:
    """``membership_open`` for many members in one transaction and one
    extension of the chain (bulk imports, tests with thousands of members).
    Members that already have time or entries are left alone. Returns how
    many were opened."""
    with transaction.atomic():
        members = list(
            MemberProfile.objects.select_for_update()
            .filter(pk__in=list(expires), expires_at__isnull=True)
            .exclude(Exists(LedgerEntry.objects.filter(member=OuterRef("pk"))))
            .order_by("pk")
        )
        if not members:
            return 0
        version = policy_current().version
        entries = [
            LedgerEntry(
                member_id=m.pk,
                kind=LedgerKind.OPENING,
                minutes=0,
                source_kind=SourceKind.OPENING,
                source_ref=source_ref[:64],
                policy_version=version,
                expires_before=None,
                expires_after=expires[m.pk],
                tier=tier,
                created_at=now,
            )
            for m in members
        ]
        ledger_append(entries, member_nos={m.pk: m.member_no for m in members})
        for m in members:
            m.expires_at = expires[m.pk]
            m.tier = tier or m.tier
        MemberProfile.objects.bulk_update(members, ["expires_at", "tier"], batch_size=1000)
        return len(members)


def membership_add_time(
    *,
    member: MemberProfile,
    kind: str,
    days: int,
    tier: str = "",
    source_kind: str,
    source_ref: str,
    note: str = "",
    now: datetime,
) -> LedgerEntry:
    """Add ``days`` of membership (purchase, renewal, card key) to a member
    the caller has locked (``member_lock``), inside the caller's transaction.
    Time extends the current expiry, or starts now when the membership has
    lapsed or never existed: bought time is never spent before the portal
    knew of it."""
    if kind not in _ADDING:
        raise ValueError(f"{kind} does not add time")
    if days <= 0:
        raise MembershipError("invalid_days", _("The number of days must be 1 or more."))
    minutes = days * MINUTES_PER_DAY
    after = iv.extend_expiry(
        expires_at=member.expires_at or now,
        minutes=minutes,
        credited_at=now,
        lapsed_extends_from_credit_time=True,
    )
    if after - now > MAX_AHEAD:
        raise MembershipError(
            "too_far_ahead", _("The membership would run more than 100 years ahead.")
        )
    return _append(
        member,
        kind=kind,
        minutes=minutes,
        after=after,
        tier=tier,
        source_kind=source_kind,
        source_ref=source_ref,
        note=note,
        now=now,
    )


def membership_refund(
    *,
    member: MemberProfile,
    days: int,
    source_kind: str,
    source_ref: str,
    note: str = "",
    now: datetime,
) -> LedgerEntry:
    """Take back ``days`` (a refund or chargeback) from a locked member: a
    negative entry off the expiry as it stands, which may then lie in the
    past. A member without time has nothing to refund."""
    if days <= 0:
        raise MembershipError("invalid_days", _("The number of days must be 1 or more."))
    if member.expires_at is None:
        raise MembershipError(
            "nothing_to_refund", _("This member has no membership time to take back.")
        )
    minutes = -days * MINUTES_PER_DAY
    return _append(
        member,
        kind=LedgerKind.REFUND,
        minutes=minutes,
        after=member.expires_at + timedelta(minutes=minutes),
        tier="",
        source_kind=source_kind,
        source_ref=source_ref,
        note=note,
        now=now,
    )


def membership_tier_change(
    *,
    member: MemberProfile,
    tier: str,
    source_kind: str,
    source_ref: str,
    note: str = "",
    now: datetime,
) -> LedgerEntry:
    """Move a locked member to ``tier``; the expiry stays where it is."""
    if tier not in Tier.values:
        raise MembershipError("invalid_tier", _("Unknown tier."))
    return _append(
        member,
        kind=LedgerKind.TIER_CHANGE,
        minutes=0,
        after=member.expires_at,
        tier=tier,
        source_kind=source_kind,
        source_ref=source_ref,
        note=note,
        now=now,
    )


def membership_purchase(
    *,
    member_id: int,
    days: int,
    tier: str = "",
    source_ref: str,
    note: str = "",
    now: datetime,
) -> LedgerEntry:
    """A purchase recorded by the portal itself (demo seed, operators'
    scripts): lock, then add the time, in one transaction."""
    with transaction.atomic():
        member = member_lock(member_id=member_id)
        return membership_add_time(
            member=member,
            kind=LedgerKind.PURCHASE,
            days=days,
            tier=tier,
            source_kind=SourceKind.MANUAL,
            source_ref=source_ref,
            note=note,
            now=now,
        )
