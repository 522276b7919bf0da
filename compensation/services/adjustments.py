"""Staff adjustments of membership time: the one way staff move a member's
expiry by hand (goodwill credits, corrections, debits of a mistaken credit).

Invariants:
- a reason is required, and the change is a ledger entry of kind
  ``adjustment`` on the hash chain, written in the same transaction as the
  new expiry (DESIGN §4: the ledger is the only way membership time moves);
- only supervisors (``add_membershipadjustment``) may ask for one; above the
  reviewer limit it waits for a *second* supervisor
  (``approve_membershipadjustment``), never the requester;
- applying is idempotent: the adjustment row is locked and must still be
  pending, so a double click or two approvers pay once;
- the member is told, and sees the entry and its receipt like any other.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from members.models import MemberProfile, User
from members.services.notify import notify_many

from .. import intervals as iv
from .. import notices
from ..models import (
    AdjustmentKind,
    AdjustmentStatus,
    LedgerEntry,
    LedgerKind,
    MembershipAdjustment,
    SourceKind,
)
from .chain import ledger_append
from .policy import policy_current

REQUEST_PERMISSION = "compensation.add_membershipadjustment"
APPROVE_PERMISSION = "compensation.approve_membershipadjustment"


class AdjustmentError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def adjustment_needs_second_person(*, minutes: int) -> bool:
    return abs(minutes) > settings.APPEAL_REVIEWER_LIMIT_MINUTES


def membership_adjust(
    *,
    member: MemberProfile,
    kind: str,
    minutes: int,
    reason: str,
    actor: User,
    now: datetime,
) -> MembershipAdjustment:
    """Ask for (and, within the reviewer limit, apply) a staff adjustment.

    ``minutes`` is signed; a debit is negative. Above the reviewer limit the
    adjustment is recorded as pending and only a second supervisor's
    ``membership_adjustment_approve`` moves the time."""
    if not actor.has_perm(REQUEST_PERMISSION):
        raise AdjustmentError("forbidden", _("Only supervisors may adjust membership time."))
    reason = (reason or "").strip()
    if not reason:
        raise AdjustmentError("reason_required", _("Write why the time is adjusted."))
    minutes = int(minutes)
    if minutes == 0:
        raise AdjustmentError("zero_minutes", _("An adjustment must add or remove some time."))
    if kind not in AdjustmentKind.values:
        raise AdjustmentError("invalid_kind", _("Choose the kind of adjustment."))
    if kind == AdjustmentKind.DEBIT and minutes > 0:
        minutes = -minutes  # a debit always takes time away
    if kind == AdjustmentKind.GOODWILL and minutes < 0:
        raise AdjustmentError(
            "goodwill_negative", _("A goodwill credit adds time; use a debit to remove time.")
        )
    with transaction.atomic():
        adjustment = MembershipAdjustment.objects.create(
            member=member,
            kind=kind,
            minutes=minutes,
            reason=reason[:300],
            status=AdjustmentStatus.PENDING,
            requested_by=actor,
            requested_at=now,
        )
        if not adjustment_needs_second_person(minutes=minutes):
            _apply(adjustment, approver=None, now=now)
    return adjustment


def membership_adjustment_approve(
    *, adjustment: MembershipAdjustment, approver: User, now: datetime, note: str = ""
) -> MembershipAdjustment:
    """A second supervisor approves a pending adjustment; the time moves now."""
    if not approver.has_perm(APPROVE_PERMISSION):
        raise AdjustmentError(
            "forbidden", _("Only a supervisor may approve adjustments above the reviewer limit.")
        )
    if approver.pk == adjustment.requested_by_id:
        raise AdjustmentError(
            "same_person", _("A second supervisor must approve: you asked for this adjustment.")
        )
    with transaction.atomic():
        locked = _lock_pending(adjustment)
        locked.decision_note = (note or "").strip()[:300]
        _apply(locked, approver=approver, now=now)
    return locked


def membership_adjustment_reject(
    *, adjustment: MembershipAdjustment, approver: User, now: datetime, note: str
) -> MembershipAdjustment:
    if not approver.has_perm(APPROVE_PERMISSION):
        raise AdjustmentError(
            "forbidden", _("Only a supervisor may reject adjustments above the reviewer limit.")
        )
    if not (note or "").strip():
        raise AdjustmentError("reason_required", _("Write why the adjustment is rejected."))
    with transaction.atomic():
        locked = _lock_pending(adjustment)
        locked.status = AdjustmentStatus.REJECTED
        locked.decided_by = approver
        locked.decided_at = now
        locked.decision_note = note.strip()[:300]
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return locked


def _lock_pending(adjustment: MembershipAdjustment) -> MembershipAdjustment:
    locked = MembershipAdjustment.objects.select_for_update().get(pk=adjustment.pk)
    if locked.status != AdjustmentStatus.PENDING:
        raise AdjustmentError("already_decided", _("This adjustment was already decided."))
    return locked


def _apply(adjustment: MembershipAdjustment, *, approver: User | None, now: datetime) -> None:
    # Lock order as everywhere: the adjustment (caller), then the member,
    # then the ledger head inside ledger_append.
    member = MemberProfile.objects.select_for_update().get(pk=adjustment.member_id)
    before = member.expires_at
    if adjustment.minutes < 0 and before is None:
        raise AdjustmentError(
            "nothing_to_debit", _("This member has no membership time to take away.")
        )
    # Added time starts from now when the membership has lapsed (or never
    # existed), as credits do; a debit comes off the expiry as it stands.
    after = iv.extend_expiry(
        expires_at=before or now,
        minutes=adjustment.minutes,
        credited_at=now,
        lapsed_extends_from_credit_time=adjustment.minutes > 0,
    )
    entry = LedgerEntry(
        member_id=member.pk,
        kind=LedgerKind.ADJUSTMENT,
        minutes=adjustment.minutes,
        source_kind=SourceKind.MANUAL,
        source_ref=str(adjustment.public_id),
        policy_version=policy_current().version,
        expires_before=before,
        expires_after=after,
        note=adjustment.reason[:300],
        created_at=now,
    )
    ledger_append([entry], member_nos={member.pk: member.member_no})
    member.expires_at = after
    member.save(update_fields=["expires_at"])
    adjustment.entry = entry
    adjustment.status = AdjustmentStatus.APPLIED
    if approver is not None:
        adjustment.decided_by = approver
    adjustment.decided_at = now
    adjustment.save(update_fields=["entry", "status", "decided_by", "decided_at", "decision_note"])
    notify_many(messages=[notices.membership_adjusted(adjustment, tz=member.timezone)], now=now)
