"""The appeal workflow. Member pages, the API and Django admin all call these.

States: submitted -> in review -> (info requested <-> in review) ->
approved / partly approved / rejected / withdrawn; rejected, partly approved
or overdue appeals can be taken to mediation. Every transition locks the
appeal row, checks the state it starts from, and writes an AppealEvent (the
audit trail and the member's timeline) in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils.translation import gettext as _

from compensation import intervals as iv
from compensation.models import Claim, Disconnect, DisconnectStatus, Outcome, SourceKind
from compensation.services.credit import compensation_credit, compensation_preview
from compensation.services.policy import policy_current
from members.models import MemberProfile, NotificationKind, User
from members.services.notify import Message, local_time, notify_many

from .evidence import MAX_SCREENSHOTS, CleanFile
from .models import (
    OPEN_STATUSES,
    Appeal,
    AppealEvent,
    AppealStatus,
    EventKind,
    Evidence,
)

# Claims may not reach into the future beyond clock skew, nor be absurdly long.
MAX_CLAIM_SPAN = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=2)


class AppealError(Exception):
    """A refusal the member or reviewer should read (already translated)."""

    def __init__(self, code: str, message: str, *, existing: Appeal | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.existing = existing


def _role(user: User | None) -> str:
    if user is None:
        return "system"
    return "staff" if user.is_staff else "member"


def _event(appeal: Appeal, kind: str, *, actor, now, old="", message="", data=None) -> AppealEvent:
    return AppealEvent.objects.create(
        appeal=appeal,
        kind=kind,
        actor=actor,
        actor_role=_role(actor),
        old_status=old,
        new_status=appeal.status,
        message=message,
        data=data or {},
        created_at=now,
    )


def _notify(appeal: Appeal, kind: str, title: str, body: str, *, now: datetime, key: str) -> None:
    url = reverse("appeals:detail", kwargs={"public_id": appeal.public_id})
    notify_many(
        messages=[
            Message(
                member_id=appeal.member_id,
                kind=kind,
                dedupe_key=f"appeal:{appeal.public_id}:{key}",
                render=lambda: (
                    title() if callable(title) else title,
                    body() if callable(body) else body,
                    url,
                ),
            )
        ],
        now=now,
    )


def appeal_deadline(*, end: datetime) -> datetime:
    """Policy: appeals are open until the window after the disconnect ends."""
    return end + timedelta(hours=policy_current().appeal_window_hours)


def _store_evidence(appeal: Appeal, files: list[CleanFile], *, actor, now) -> list[Evidence]:
    stored = []
    for clean in files:
        evidence = Evidence(
            appeal=appeal,
            kind=clean.kind,
            fmt=clean.fmt,
            content_type=clean.content_type,
            original_name=clean.original_name,
            size=clean.size,
            width=clean.width,
            height=clean.height,
            sha256=clean.sha256,
            uploaded_by=actor,
            created_at=now,
        )
        evidence.file.save("upload", ContentFile(clean.data), save=False)
        evidence.save()
        stored.append(evidence)
    return stored


@dataclass
class Triage:
    disconnects: list[Disconnect]
    fully_credited: bool
    suggested_minutes: int
    entry_ids: list[str]


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
    )


def _disconnect_end(disconnect: Disconnect, claimed_end: datetime | None) -> datetime:
    """Where an appeal on ``disconnect`` ends. A detected end wins. An
    ongoing disconnect cannot be appealed yet: its end, and so the window,
    is unknown. One closed as unresolved (the member never came back within
    the cap) is appealable with the member's own end: that is the claim."""
    if disconnect.ended_at is not None:
        return disconnect.ended_at
    if disconnect.status == DisconnectStatus.OPEN:
        raise AppealError(
            "disconnect_ongoing",
            _("This disconnect has not ended yet. You can appeal once it has ended."),
        )
    if claimed_end is None:
        raise AppealError(
            "end_required",
            _(
                "We never saw this session resume. Tell us when your service came back (the end of the disconnect)."
            ),
        )
    return claimed_end


def appeal_submit(
    *,
    member: MemberProfile,
    actor: User,
    claimed_start: datetime,
    claimed_end: datetime,
    description: str,
    files: list[CleanFile],
    submission_token: uuid.UUID,
    now: datetime,
    disconnect: Disconnect | None = None,
    node=None,
    service: str = "",
    late_reason: str = "",
) -> Appeal:
    """File an appeal inside the window (staff may file late with a reason).

    A double-submitted form returns the first appeal; a second open appeal
    for the same disconnect or an overlapping span is refused, naming the
    existing one. Evidence must already be cleaned (appeals.evidence)."""
    if disconnect is not None:
        if disconnect.member_id != member.pk:
            raise AppealError("not_found", _("That disconnect was not found."))
        claimed_start = disconnect.started_at
        claimed_end = _disconnect_end(disconnect, claimed_end)
        node = disconnect.node
    if claimed_start is None or claimed_end is None:
        raise AppealError("invalid_span", _("Give the start and the end of the disconnect."))
    if claimed_end <= claimed_start:
        raise AppealError("invalid_span", _("The end must be after the start."))
    if claimed_end > now + CLOCK_SKEW:
        raise AppealError("future", _("The disconnect cannot end in the future."))
    if claimed_end - claimed_start > MAX_CLAIM_SPAN:
        raise AppealError("too_long", _("One appeal can cover at most 7 days."))
    deadline = appeal_deadline(end=claimed_end)
    late_allowed = bool(late_reason) and actor.has_perm("appeals.file_late_appeal")
    if now > deadline and not late_allowed:
        raise AppealError(
            "window_closed",
            _(
                "The appeal window for this disconnect closed at %(deadline)s (%(hours)d hours after it ended)."
            )
            % {
                "deadline": local_time(deadline, member.timezone),
                "hours": policy_current().appeal_window_hours,
            },
        )
    screenshots = sum(1 for f in files if f.kind == "screenshot")
    if screenshots == 0 and not actor.is_staff:
        raise AppealError("no_screenshot", _("Attach at least one screenshot."))

    try:
        with transaction.atomic():
            # The member's row serialises their filings: the duplicate check
            # below cannot race with a second submit.
            MemberProfile.objects.select_for_update().get(pk=member.pk)
            existing = Appeal.objects.filter(
                member=member, submission_token=submission_token
            ).first()
            if existing is not None:
                return existing
            same_time = Q(claimed_start__lt=claimed_end, claimed_end__gt=claimed_start)
            if disconnect is not None:
                same_time |= Q(disconnect=disconnect)
            duplicate = Appeal.objects.filter(
                same_time, member=member, status__in=OPEN_STATUSES
            ).first()
            if duplicate is not None:
                raise AppealError(
                    "duplicate",
                    _("You already have an open appeal for this time (%(id)s).")
                    % {"id": duplicate.short_id},
                    existing=duplicate,
                )
            policy = policy_current()
            appeal = Appeal.objects.create(
                member=member,
                disconnect=disconnect,
                node=node,
                service=service[:120],
                claimed_start=claimed_start,
                claimed_end=claimed_end,
                description=description,
                deadline=deadline,
                late_reason=late_reason if now > deadline else "",
                submission_token=submission_token,
                filed_by=actor,
                sla_due_at=now + timedelta(hours=policy.sla_first_response_hours),
                created_at=now,
            )
            _store_evidence(appeal, files, actor=actor, now=now)
            _event(
                appeal,
                EventKind.SUBMITTED,
                actor=actor,
                now=now,
                message=description[:500],
                data={"late_reason": appeal.late_reason} if appeal.late_reason else {},
            )
            _auto_triage(appeal, now=now)
            _notify(
                appeal,
                NotificationKind.APPEAL_RECEIVED,
                lambda: _("Appeal %(id)s received") % {"id": appeal.short_id},
                lambda: (
                    _("We received your appeal. Staff will respond by %(due)s.")
                    % {"due": local_time(appeal.sla_due_at, member.timezone)}
                ),
                now=now,
                key="received",
            )
            return appeal
    except IntegrityError:
        # Lost a race on the same token or disconnect: report what won.
        existing = Appeal.objects.filter(member=member, submission_token=submission_token).first()
        if existing is not None:
            return existing
        raise AppealError(
            "duplicate", _("You already have an open appeal for this time.")
        ) from None


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


def _locked(appeal: Appeal, allowed: tuple[str, ...], *, owner: User | None = None) -> Appeal:
    """Lock the appeal row and check where the transition starts from. With
    ``owner``, anyone but the appeal's member is told it does not exist."""
    appeal = Appeal.objects.select_for_update().select_related("member").get(pk=appeal.pk)
    if owner is not None and appeal.member.user_id != owner.pk:
        raise AppealError("not_found", _("That appeal was not found."))
    if appeal.status not in allowed:
        raise AppealError(
            "conflict",
            _("This appeal is now “%(status)s”; the action no longer applies.")
            % {"status": appeal.get_status_display()},
        )
    return appeal


def _first_response(appeal: Appeal, now: datetime) -> None:
    if appeal.first_response_at is None:
        appeal.first_response_at = now


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
        existing = appeal.evidence.filter(kind="screenshot").count()
        if existing + sum(1 for f in files if f.kind == "screenshot") > MAX_SCREENSHOTS:
            raise AppealError(
                "too_many_files",
                _("At most %(n)d screenshots per appeal.") % {"n": MAX_SCREENSHOTS},
            )
        old = appeal.status
        if appeal.status == AppealStatus.INFO_REQUESTED:
            appeal.status = AppealStatus.IN_REVIEW
            appeal.save(update_fields=["status", "updated_at"])
        stored = _store_evidence(appeal, files, actor=member_user, now=now)
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


def appeal_credit_bound(*, appeal: Appeal, now: datetime) -> int:
    """The most a reviewer may credit on ``appeal``: the claimed span's time
    not yet covered (under the policy's ratio, before caps), plus the minutes
    caps withheld from disconnects inside it, and never less than the
    suggestion shown when it was filed."""
    start, end = appeal.claimed_start, appeal.claimed_end
    preview = compensation_preview(
        member_id=appeal.member_id, intervals=[(start, end)], source_kind=SourceKind.APPEAL, now=now
    )
    withheld = (
        Disconnect.objects.filter(member_id=appeal.member_id, started_at__lt=end)
        .filter(Q(ended_at__gt=start) | Q(ended_at__isnull=True))
        .aggregate(total=Sum("withheld_minutes"))["total"]
        or 0
    )
    return max(preview.calc.raw_minutes + withheld, appeal.suggested_minutes)


def appeal_approve(
    *,
    appeal: Appeal,
    staff: User,
    minutes: int | None,
    reason: str,
    now: datetime,
    partly: bool = False,
) -> Appeal:
    """Approve (or partly approve) and credit through the compensation
    service, keyed by the appeal: two reviewers approving at once produce one
    decision and one credit. Credits above the reviewer limit need a
    supervisor."""
    if partly and not reason.strip():
        raise AppealError("reason_required", _("Explain what was not approved."))
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
