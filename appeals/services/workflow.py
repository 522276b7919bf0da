"""The review workflow after filing: assignment, messages, decisions,
withdrawal and mediation. Every transition locks the row and writes an
event; decisions credit through the compensation service."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from compensation.models import SourceKind
from compensation.services.credit import compensation_credit
from members.models import NotificationKind, User

from ..evidence import MAX_SCREENSHOTS, CleanFile, clean_uploads
from ..models import (
    OPEN_STATUSES,
    Appeal,
    AppealStatus,
    EventKind,
    EvidenceKind,
)
from .common import AppealError, _event, _first_response, _locked, _notify, _store_evidence
from .triage import appeal_credit_bound, appeal_suggestion


def appeal_assign(*, appeal: Appeal, staff: User, now: datetime) -> Appeal:
    with transaction.atomic():
        appeal = _locked(appeal, OPEN_STATUSES)
        old = appeal.status
        appeal.assigned_to = staff
        if appeal.status == AppealStatus.SUBMITTED:
            appeal.status = AppealStatus.IN_REVIEW
        _first_response(appeal, now)
        appeal.save()
        _event(appeal, EventKind.ASSIGNED, actor=staff, now=now, old=old, data={"to": staff.email})
        if old == AppealStatus.SUBMITTED:
            _notify(
                appeal,
                NotificationKind.APPEAL_RECEIVED,
                lambda: _("Appeal %(id)s is being reviewed") % {"id": appeal.short_id},
                _("A staff member has started reviewing your appeal."),
                now=now,
                key="in_review",
            )
        return appeal


def appeal_reply(*, screenshots: list, logs: list, **reply) -> Appeal:
    """The member's reply from the page or the API: clean the uploads, then
    appeal_member_reply."""
    files = clean_uploads(screenshots=screenshots, logs=logs, require_screenshot=False)
    return appeal_member_reply(files=files, **reply)


def appeal_request_info(*, appeal: Appeal, staff: User, message: str, now: datetime) -> Appeal:
    if not message.strip():
        raise AppealError("message_required", _("Write what the member should add."))
    with transaction.atomic():
        appeal = _locked(appeal, (AppealStatus.SUBMITTED, AppealStatus.IN_REVIEW))
        old = appeal.status
        appeal.status = AppealStatus.INFO_REQUESTED
        appeal.assigned_to = appeal.assigned_to or staff
        _first_response(appeal, now)
        appeal.save()
        event = _event(
            appeal, EventKind.INFO_REQUESTED, actor=staff, now=now, old=old, message=message
        )
        _notify(
            appeal,
            NotificationKind.APPEAL_INFO_REQUESTED,
            lambda: _("Appeal %(id)s: more information needed") % {"id": appeal.short_id},
            message,
            now=now,
            key=f"info:{event.pk}",
        )
        return appeal


def appeal_member_reply(
    *, appeal: Appeal, member_user: User, message: str, files: list[CleanFile], now: datetime
) -> Appeal:
    """The member answers (text and/or evidence). An answer to a request for
    information puts the appeal back in review."""
    if not message.strip() and not files:
        raise AppealError("empty", _("Write a message or attach a file."))
    with transaction.atomic():
        appeal = _locked(appeal, OPEN_STATUSES, owner=member_user)
        existing = appeal.evidence.filter(kind=EvidenceKind.SCREENSHOT).count()
        if existing + sum(1 for f in files if f.kind == EvidenceKind.SCREENSHOT) > MAX_SCREENSHOTS:
            raise AppealError(
                "too_many_files",
                _("At most %(n)d screenshots per appeal.") % {"n": MAX_SCREENSHOTS},
            )
        old = appeal.status
        if appeal.status == AppealStatus.INFO_REQUESTED:
            appeal.status = AppealStatus.IN_REVIEW
            appeal.save(update_fields=["status", "updated_at"])
        stored = _store_evidence(appeal, files, actor=member_user, now=now)
        if any(e.kind == EvidenceKind.LOG for e in stored):
            # A log can show a span detection missed: the suggestion follows it.
            suggested = appeal_suggestion(appeal=appeal, now=now).minutes
            if suggested != appeal.suggested_minutes:
                appeal.suggested_minutes = suggested
                appeal.save(update_fields=["suggested_minutes", "updated_at"])
        if message.strip():
            _event(appeal, EventKind.MESSAGE, actor=member_user, now=now, old=old, message=message)
        if stored:
            _event(
                appeal,
                EventKind.EVIDENCE_ADDED,
                actor=member_user,
                now=now,
                old=old,
                data={"files": [e.original_name for e in stored]},
            )
        return appeal


def appeal_staff_message(*, appeal: Appeal, staff: User, message: str, now: datetime) -> Appeal:
    if not message.strip():
        raise AppealError("message_required", _("Write a message."))
    with transaction.atomic():
        appeal = _locked(appeal, tuple(AppealStatus.values))
        _first_response(appeal, now)
        appeal.save(update_fields=["first_response_at", "updated_at"])
        event = _event(
            appeal, EventKind.MESSAGE, actor=staff, now=now, old=appeal.status, message=message
        )
        _notify(
            appeal,
            NotificationKind.APPEAL_INFO_REQUESTED,
            lambda: _("New message on appeal %(id)s") % {"id": appeal.short_id},
            message,
            now=now,
            key=f"msg:{event.pk}",
        )
        return appeal


def appeal_approve(
    *,
    appeal: Appeal,
    staff: User,
    minutes: int | None,
    reason: str,
    now: datetime,
    partly: bool | None = None,
) -> Appeal:
    """Approve (or partly approve) and credit through the compensation
    service, keyed by the appeal: two reviewers approving at once produce one
    decision and one credit. Every decision carries a reason the member
    reads. Credits above the reviewer limit need a supervisor. ``partly``
    None: partly approved when less than the claimed time not yet paid is
    credited."""
    if not reason.strip():
        raise AppealError(
            "reason_required",
            _("Every decision needs a reason the member can read.")
            if not partly
            else _("Explain what was not approved."),
        )
    with transaction.atomic():
        appeal = _locked(appeal, OPEN_STATUSES)
        granted = appeal.suggested_minutes if minutes is None else int(minutes)
        if granted < 0:
            raise AppealError("invalid_minutes", _("Minutes cannot be negative."))
        above_supervisor = staff.has_perm("appeals.approve_above_limit")
        if granted > settings.APPEAL_REVIEWER_LIMIT_MINUTES and not above_supervisor:
            raise AppealError(
                "needs_supervisor",
                _("Crediting more than %(limit)d minutes needs a supervisor.")
                % {"limit": settings.APPEAL_REVIEWER_LIMIT_MINUTES},
            )
        bound = appeal_credit_bound(appeal=appeal, now=now)
        if partly is None:
            partly = granted < bound
        if granted > bound:
            # More than the member claimed and the portal has not paid: a
            # decision only a supervisor may take, and never without a why.
            if not above_supervisor:
                raise AppealError(
                    "above_claim",
                    _(
                        "%(granted)d minutes is more than the %(bound)d minutes claimed and not yet "
                        "compensated: only a supervisor may credit more, with a written reason."
                    )
                    % {"granted": granted, "bound": bound},
                )
            if not reason.strip():
                raise AppealError(
                    "reason_required",
                    _(
                        "Crediting more than the %(bound)d minutes claimed and not yet "
                        "compensated needs a written reason."
                    )
                    % {"bound": bound},
                )
        claim = compensation_credit(
            member_id=appeal.member_id,
            intervals=[(appeal.claimed_start, appeal.claimed_end)],
            source_kind=SourceKind.APPEAL,
            source_ref=str(appeal.public_id),
            idempotency_key=f"appeal:{appeal.public_id}",
            now=now,
            note=f"appeal {appeal.short_id} by {staff.email}",
            minutes_override=granted,
        )
        old = appeal.status
        appeal.status = AppealStatus.PARTLY_APPROVED if partly else AppealStatus.APPROVED
        appeal.claim = claim
        appeal.credited_minutes = claim.credited_minutes
        appeal.decided_at = now
        appeal.decided_by = staff
        appeal.decision_reason = reason
        _first_response(appeal, now)
        appeal.save()
        _event(
            appeal,
            EventKind.PARTLY_APPROVED if partly else EventKind.APPROVED,
            actor=staff,
            now=now,
            old=old,
            message=reason,
            data={
                "credited_minutes": claim.credited_minutes,
                "entry": str(claim.entry.public_id) if claim.entry_id else None,
            },
        )
        _notify(
            appeal,
            NotificationKind.APPEAL_DECIDED,
            lambda: (
                _("Appeal %(id)s approved: %(m)d minutes credited")
                % {"id": appeal.short_id, "m": claim.credited_minutes}
            ),
            reason or _("Your appeal was approved."),
            now=now,
            key="decided",
        )
        return appeal


def appeal_reject(*, appeal: Appeal, staff: User, reason: str, now: datetime) -> Appeal:
    if not reason.strip():
        raise AppealError("reason_required", _("A rejection needs a reason the member can read."))
    with transaction.atomic():
        appeal = _locked(appeal, OPEN_STATUSES)
        old = appeal.status
        appeal.status = AppealStatus.REJECTED
        appeal.decided_at = now
        appeal.decided_by = staff
        appeal.decision_reason = reason
        _first_response(appeal, now)
        appeal.save()
        _event(appeal, EventKind.REJECTED, actor=staff, now=now, old=old, message=reason)
        _notify(
            appeal,
            NotificationKind.APPEAL_DECIDED,
            lambda: _("Appeal %(id)s rejected") % {"id": appeal.short_id},
            lambda: (
                reason
                + "\n\n"
                + _(
                    "If you disagree, you can take the case to third-party mediation from the appeal page."
                )
            ),
            now=now,
            key="decided",
        )
        return appeal


def appeal_withdraw(*, appeal: Appeal, member_user: User, now: datetime) -> Appeal:
    with transaction.atomic():
        appeal = _locked(appeal, OPEN_STATUSES, owner=member_user)
        old = appeal.status
        appeal.status = AppealStatus.WITHDRAWN
        appeal.save(update_fields=["status", "updated_at"])
        _event(appeal, EventKind.WITHDRAWN, actor=member_user, now=now, old=old)
        return appeal


def appeal_can_escalate(appeal: Appeal, *, now: datetime) -> bool:
    if appeal.status in (AppealStatus.REJECTED, AppealStatus.PARTLY_APPROVED):
        return True
    return appeal.is_overdue(now)


def appeal_escalate(*, appeal: Appeal, member_user: User, now: datetime) -> Appeal:
    """The member takes the case outside the platform (e.g. 12315). Recorded;
    the evidence bundle is then available to download."""
    with transaction.atomic():
        appeal = _locked(
            appeal,
            (AppealStatus.REJECTED, AppealStatus.PARTLY_APPROVED, *OPEN_STATUSES),
            owner=member_user,
        )
        if not appeal_can_escalate(appeal, now=now):
            raise AppealError(
                "not_escalable",
                _(
                    "Mediation is available once an appeal is rejected, partly approved, or overdue."
                ),
            )
        old = appeal.status
        appeal.status = AppealStatus.MEDIATION
        appeal.escalated_at = now
        appeal.save(update_fields=["status", "escalated_at", "updated_at"])
        _event(appeal, EventKind.ESCALATED, actor=member_user, now=now, old=old)
        _notify(
            appeal,
            NotificationKind.APPEAL_ESCALATED,
            lambda: _("Appeal %(id)s taken to mediation") % {"id": appeal.short_id},
            _("Your evidence bundle is ready to download from the appeal page."),
            now=now,
            key="escalated",
        )
        return appeal
