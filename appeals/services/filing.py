"""Filing an appeal: the window, duplicates, evidence."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from compensation.models import Disconnect
from compensation.services.policy import policy_current
from members.models import MemberProfile, NotificationKind, User
from members.services.notify import local_time

from ..evidence import CleanFile, clean_uploads
from ..models import Appeal, EventKind, EvidenceKind
from .checks import appeal_check, duplicate_error, open_appeal_overlapping
from .common import AppealError, _event, _notify, _store_evidence
from .triage import _auto_triage


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
    check = appeal_check(
        member=member,
        actor=actor,
        claimed_start=claimed_start,
        claimed_end=claimed_end,
        now=now,
        disconnect=disconnect,
        late_reason=late_reason,
        duplicates=False,  # checked below, under the member's lock
    )
    if check.error is not None:
        raise check.error
    claimed_start, claimed_end, deadline = check.start, check.end, check.deadline
    if disconnect is not None:
        node = disconnect.node
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
            duplicate = open_appeal_overlapping(
                member=member, start=claimed_start, end=claimed_end, disconnect=disconnect
            )
            if duplicate is not None:
                raise duplicate_error(duplicate)
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
