"""Everything a filing would be refused for, checked before any upload.

The guided form (appeals/new) shows this before the member picks a file, and
``appeal_submit`` runs the same function: one home for the rules, the same
codes and messages before and after an upload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils.translation import gettext as _

from compensation.models import Disconnect, DisconnectStatus
from compensation.services.policy import policy_current
from members.models import MemberProfile, User
from members.services.notify import local_time

from ..models import OPEN_STATUSES, Appeal
from .common import CLOCK_SKEW, MAX_CLAIM_SPAN, AppealError, appeal_deadline
from .triage import Triage, appeal_triage

# datetime-local inputs carry minutes; a recorded disconnect has seconds.
_SAME_MINUTE = timedelta(seconds=60)


@dataclass
class AppealCheck:
    """A claimed span as filing would see it. ``error`` is the refusal filing
    would raise (None: an appeal can be filed); ``triage`` what the portal
    recorded and credited, when the span is valid."""

    start: datetime | None
    end: datetime | None
    deadline: datetime | None
    triage: Triage | None
    error: AppealError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def could_add_minutes(self) -> int:
        return self.triage.suggested_minutes if self.triage else 0


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


def _span(
    member: MemberProfile,
    disconnect: Disconnect | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """The claimed span and the end its window runs from. A recorded
    disconnect gives the span; the member may extend it, not shorten it, and
    its window runs from its recorded end (extending does not reopen it)."""
    if disconnect is None:
        return start, end, end
    if disconnect.member_id != member.pk:
        raise AppealError("not_found", _("That disconnect was not found."))
    recorded_end = _disconnect_end(disconnect, end)
    if start is None or abs(start - disconnect.started_at) < _SAME_MINUTE:
        start = disconnect.started_at
    if end is None or (
        disconnect.ended_at is not None and abs(end - disconnect.ended_at) < _SAME_MINUTE
    ):
        end = recorded_end
    if start > disconnect.started_at or (
        disconnect.ended_at is not None and end < disconnect.ended_at
    ):
        raise AppealError(
            "span_shrinks",
            _(
                "An appeal on a recorded disconnect can extend its time, not shorten it. "
                "To claim other time, file an appeal without choosing a disconnect."
            ),
        )
    return start, end, disconnect.ended_at or end


def _refusal(
    *,
    member: MemberProfile,
    actor: User,
    start: datetime | None,
    end: datetime | None,
    window_end: datetime | None,
    now: datetime,
    late_reason: str,
) -> datetime:
    """Raise what filing refuses for the span itself; return its deadline."""
    if start is None or end is None:
        raise AppealError("invalid_span", _("Give the start and the end of the disconnect."))
    if end <= start:
        raise AppealError("invalid_span", _("The end must be after the start."))
    if end > now + CLOCK_SKEW:
        raise AppealError("future", _("The disconnect cannot end in the future."))
    if end - start > MAX_CLAIM_SPAN:
        raise AppealError("too_long", _("One appeal can cover at most 7 days."))
    deadline = appeal_deadline(end=window_end or end)
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
    return deadline


def open_appeal_overlapping(
    *, member: MemberProfile, start: datetime, end: datetime, disconnect: Disconnect | None = None
) -> Appeal | None:
    """The member's open appeal on this time or disconnect (one per span)."""
    same_time = Q(claimed_start__lt=end, claimed_end__gt=start)
    if disconnect is not None:
        same_time |= Q(disconnect=disconnect)
    return Appeal.objects.filter(same_time, member=member, status__in=OPEN_STATUSES).first()


def duplicate_error(existing: Appeal) -> AppealError:
    return AppealError(
        "duplicate",
        _("You already have an open appeal for this time (%(id)s).") % {"id": existing.short_id},
        existing=existing,
    )


def appeal_check(
    *,
    member: MemberProfile,
    actor: User,
    claimed_start: datetime | None,
    claimed_end: datetime | None,
    now: datetime,
    disconnect: Disconnect | None = None,
    late_reason: str = "",
    duplicates: bool = True,
) -> AppealCheck:
    """Would filing this span be accepted, and what could it add? Pure reads.

    Refusals, in the order filing meets them: the span (``invalid_span``,
    ``future``, ``too_long``, ``span_shrinks``, ``disconnect_ongoing``,
    ``end_required``), the window (``window_closed``), an open appeal on the
    same time (``duplicate``, unless ``duplicates`` is False: filing checks
    that under its lock), and, for members, time already credited in full
    (``already_compensated``; staff filings are resolved as such instead)."""
    start = end = deadline = None
    try:
        start, end, window_end = _span(member, disconnect, claimed_start, claimed_end)
        deadline = _refusal(
            member=member,
            actor=actor,
            start=start,
            end=end,
            window_end=window_end,
            now=now,
            late_reason=late_reason,
        )
    except AppealError as exc:
        return AppealCheck(start, end, deadline, None, exc)
    triage = appeal_triage(member=member, start=start, end=end, now=now)
    error = None
    existing = (
        open_appeal_overlapping(member=member, start=start, end=end, disconnect=disconnect)
        if duplicates
        else None
    )
    if existing is not None:
        error = duplicate_error(existing)
    elif triage.fully_credited and not actor.is_staff:
        error = AppealError(
            "already_compensated",
            _(
                "This time was already credited in full (%(covered)d of %(claimed)d minutes). "
                "An appeal cannot add to it; the receipts are below."
            )
            % {"covered": triage.covered_minutes, "claimed": triage.claimed_minutes},
        )
    return AppealCheck(start, end, deadline, triage, error)
