"""Membership events posted by a billing platform (POST
/api/v1/memberships/events/): purchases, renewals, refunds, tier changes.

Invariants:
- idempotent by the platform's key (unique per platform in the database):
  a repeated key changes nothing and answers the event's result; the same
  key with different content is refused (``key_reused``);
- every change of time or tier is a ledger entry (services/memberships.py),
  in the same transaction as the event row, under the member's row lock;
- rejected items consume nothing: their key may be posted again once fixed;
- every item gets a result: an item the database refuses is rolled back
  and rejected (``invalid`` for data it cannot hold, ``unavailable`` for a
  failure of its own), never a 500 that would hide the results of the
  items committed before it;
- only members get time: an e-mail address of a staff account (which has
  no member profile) is rejected (``staff_account``), never given one.

Out-of-order delivery, by event time (``occurred_at``), the rule documented
in docs/deployment.md:
1. Purchases and renewals are applied when they arrive. Added time commutes,
   and bought time is never granted retroactively: it extends the current
   expiry, or starts at the moment the portal applies it when the membership
   has lapsed (the member could not use time the portal did not know of).
2. A refund names the purchase or renewal it refunds (``refunds``: that
   event's key). If that event has arrived, the refund takes its days (or
   fewer, ``days``) off the expiry now. If it has not, the refund is kept
   ``pending`` and is applied in the same transaction as the purchase when
   that arrives: both entries are on the ledger, the net is what the
   platform meant, whatever the order. A purchase is refunded at most once.
3. The tier follows the newest event time: a tier change (or a purchase's
   tier) older than the last tier the member got from the platform is
   recorded as ``superseded`` for its tier, and changes nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from members.models import MemberProfile, User
from members.services.accounts import account_create_pending

from ..models import EventKind, EventStatus, LedgerKind, MembershipEvent, Platform, SourceKind
from .memberships import (
    MembershipError,
    member_lock,
    membership_add_time,
    membership_refund,
    membership_tier_change,
)

logger = logging.getLogger(__name__)

MAX_FUTURE_SKEW = timedelta(minutes=5)
_TIME_KINDS = {EventKind.PURCHASE: LedgerKind.PURCHASE, EventKind.RENEWAL: LedgerKind.RENEWAL}


@dataclass(frozen=True)
class EventIn:
    """One event as the API validated it."""

    key: str
    kind: str
    occurred_at: datetime
    digest: str
    member_no: str = ""
    email: str = ""
    days: int | None = None
    tier: str = ""
    refunds: str = ""


class Rejected(Exception):
    def __init__(self, code: str, message: str, *, member_no: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.member_no = member_no


def rejection(*, key: str | None, code: str, detail: str, member_no: str | None = None) -> dict:
    return {
        "key": key,
        "status": "rejected",
        "error": code,
        "detail": detail,
        "member": member_no,
        "member_created": False,
        "entry": None,
        "expires_at": None,
        "tier": None,
    }


def membership_events_apply(
    *, platform: Platform, events: list[EventIn], now: datetime
) -> list[dict]:
    """Apply a batch in order, each event in its own transaction (a bad one
    loses nothing else). Returns one result per event, in order."""
    results = []
    for event in events:
        try:
            result = _apply(platform, event, now)
        except Rejected as exc:
            result = rejection(
                key=event.key, code=exc.code, detail=exc.message, member_no=exc.member_no
            )
        except DataError:
            # The API's validation should have refused it; the item's
            # transaction is rolled back, the others still count.
            logger.exception("platform event %s refused by the database", event.key)
            result = rejection(
                key=event.key,
                code="invalid",
                detail=_("The event holds a value the portal cannot store."),
            )
        except DatabaseError:
            logger.exception("platform event %s not applied", event.key)
            result = rejection(
                key=event.key,
                code="unavailable",
                detail=_("The event could not be applied now; nothing changed. Send it again."),
            )
        results.append(result)
    return results


def _replay(existing: MembershipEvent, event: EventIn) -> dict:
    if existing.payload_digest != event.digest:
        raise Rejected(
            "key_reused",
            _("This idempotency key was already used for a different event."),
            member_no=None,
        )
    return {**existing.result, "replayed": True}


def _resolve_member(event: EventIn) -> tuple[MemberProfile, bool]:
    if event.member_no:
        member = MemberProfile.objects.filter(member_no=event.member_no).first()
        if member is None:
            raise Rejected("unknown_member", _("No member has this member number."))
        return member, False
    member = MemberProfile.objects.filter(user__email__iexact=event.email).first()
    if member is not None:
        return member, False
    account = User.objects.filter(email__iexact=event.email).first()
    if account is not None:
        # An account without a member profile: staff (reviewers, supervisors)
        # are not members, and membership time must not become theirs.
        raise _not_a_member(account)
    if settings.MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS != "create":
        raise Rejected("unknown_member", _("No member has this e-mail address."))
    user, created = account_create_pending(email=event.email)
    member = MemberProfile.objects.filter(user=user).first()
    if member is None:  # created concurrently as a staff account
        raise _not_a_member(user)
    return member, created


def _not_a_member(user: User) -> Rejected:
    if user.is_staff or user.is_superuser:
        return Rejected(
            "staff_account",
            _("This e-mail address belongs to a staff account, which holds no membership."),
        )
    return Rejected("unknown_member", _("No member has this e-mail address."))


def _apply(platform: Platform, event: EventIn, now: datetime) -> dict:
    existing = MembershipEvent.objects.filter(platform=platform, key=event.key).first()
    if existing is not None:
        return _replay(existing, event)
    if event.occurred_at > now + MAX_FUTURE_SKEW:
        raise Rejected("occurred_in_future", _("The event time lies in the future."))
    member, created = _resolve_member(event)
    try:
        with transaction.atomic():
            locked = member_lock(member_id=member.pk)
            # Under the member lock: a concurrent post of the same key for the
            # same member has committed by now, or will find ours.
            existing = MembershipEvent.objects.filter(platform=platform, key=event.key).first()
            if existing is not None:
                return _replay(existing, event)
            row = MembershipEvent.objects.create(
                platform=platform,
                key=event.key,
                kind=event.kind,
                member=locked,
                occurred_at=event.occurred_at,
                days=event.days,
                refunds=event.refunds,
                status=EventStatus.APPLIED,
                payload_digest=event.digest,
                received_at=now,
            )
            _dispatch(platform, row, locked, requested_tier=event.tier, now=now)
            row.result = _result(row, locked, member_created=created)
            row.save(update_fields=["status", "tier", "entry", "result"])
            return row.result
    except IntegrityError:
        # The same key for another member, committed concurrently.
        existing = MembershipEvent.objects.filter(platform=platform, key=event.key).first()
        if existing is None:
            raise
        return _replay(existing, event)
    except MembershipError as exc:
        raise Rejected(exc.code, exc.message, member_no=member.member_no) from exc


def _result(row: MembershipEvent, member: MemberProfile, *, member_created: bool) -> dict:
    return {
        "key": row.key,
        "status": row.status,
        "member": member.member_no,
        "member_created": member_created,
        "entry": str(row.entry.public_id) if row.entry_id else None,
        "expires_at": member.expires_at.isoformat() if member.expires_at else None,
        "tier": member.tier,
    }


def _tier_is_newest(member: MemberProfile, occurred_at: datetime) -> bool:
    newest = (
        MembershipEvent.objects.filter(member=member)
        .exclude(tier="")
        .aggregate(newest=Max("occurred_at"))["newest"]
    )
    return newest is None or occurred_at >= newest


def _dispatch(
    platform: Platform, row: MembershipEvent, member: MemberProfile, *, requested_tier: str, now
) -> None:
    source = {"source_kind": SourceKind.PLATFORM, "source_ref": str(row.public_id), "now": now}
    note = f"{platform.name}: {row.key}"[:300]
    if row.kind in _TIME_KINDS:
        tier = requested_tier if requested_tier and _tier_is_newest(member, row.occurred_at) else ""
        row.tier = tier
        row.entry = membership_add_time(
            member=member,
            kind=_TIME_KINDS[row.kind],
            days=row.days,
            tier=tier,
            note=note,
            **source,
        )
        _apply_pending_refunds(platform, row, member, now=now)
    elif row.kind == EventKind.TIER_CHANGE:
        if _tier_is_newest(member, row.occurred_at):
            row.tier = requested_tier
            row.entry = membership_tier_change(
                member=member, tier=requested_tier, note=note, **source
            )
        else:
            row.status = EventStatus.SUPERSEDED
    elif row.kind == EventKind.REFUND:
        _refund(platform, row, member, note=note, now=now)


def _refund(
    platform: Platform, row: MembershipEvent, member: MemberProfile, *, note: str, now
) -> None:
    if row.refunds == row.key:
        raise MembershipError("refund_target_invalid", _("A refund cannot refund itself."))
    earlier = (
        MembershipEvent.objects.filter(
            platform=platform, refunds=row.refunds, kind=EventKind.REFUND
        )
        .exclude(pk=row.pk)
        .exclude(status=EventStatus.SUPERSEDED)
    )
    if earlier.exists():
        raise MembershipError("already_refunded", _("This purchase was already refunded."))
    target = MembershipEvent.objects.filter(platform=platform, key=row.refunds).first()
    if target is None:
        row.status = EventStatus.PENDING  # applied when its purchase arrives
        return
    if target.kind not in _TIME_KINDS or target.member_id != member.pk:
        raise MembershipError(
            "refund_target_invalid",
            _("A refund must name a purchase or renewal of the same member."),
        )
    row.entry = membership_refund(
        member=member,
        days=min(row.days or target.days, target.days),
        source_kind=SourceKind.PLATFORM,
        source_ref=str(row.public_id),
        note=note,
        now=now,
    )


def _apply_pending_refunds(
    platform: Platform, purchase: MembershipEvent, member: MemberProfile, *, now
) -> None:
    pending = MembershipEvent.objects.filter(
        platform=platform, refunds=purchase.key, status=EventStatus.PENDING
    ).order_by("occurred_at", "pk")
    for refund in pending[:1]:
        if refund.member_id != member.pk:
            # Named another member's purchase: it can never apply.
            refund.status = EventStatus.SUPERSEDED
            refund.result = {**refund.result, "status": refund.status}
        else:
            refund.entry = membership_refund(
                member=member,
                days=min(refund.days or purchase.days, purchase.days),
                source_kind=SourceKind.PLATFORM,
                source_ref=str(refund.public_id),
                note=f"{platform.name}: {refund.key}"[:300],
                now=now,
            )
            refund.status = EventStatus.APPLIED
            refund.result = _result(
                refund, member, member_created=refund.result.get("member_created", False)
            )
        refund.save(update_fields=["status", "entry", "result"])
