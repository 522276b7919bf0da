"""Filing an appeal: the window, duplicates, evidence."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from compensation.models import Disconnect, DisconnectStatus
from compensation.services.policy import policy_current
from members.models import MemberProfile, NotificationKind, User
from members.services.notify import local_time

from ..evidence import CleanFile, clean_uploads
from ..models import (
    OPEN_STATUSES,
    Appeal,
    EventKind,
    EvidenceKind,
)
from .common import (
    CLOCK_SKEW,
    MAX_CLAIM_SPAN,
    AppealError,
    _event,
    _notify,
    _store_evidence,
    appeal_deadline,
)

# Claims may not reach into the future beyond clock skew, nor be absurdly long.
from .triage import _auto_triage


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
    screenshots = sum(1 for f in files if f.kind == EvidenceKind.SCREENSHOT)
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


def appeal_file(*, screenshots: list, logs: list, require_screenshot: bool = True, **submit):
    """The one path from uploaded files to a filed appeal, shared by the
    member page, the API and staff filing in admin: clean the uploads
    (appeals.evidence; EvidenceError names a bad file), then appeal_submit."""
    files = clean_uploads(screenshots=screenshots, logs=logs, require_screenshot=require_screenshot)
    return appeal_submit(files=files, **submit)
