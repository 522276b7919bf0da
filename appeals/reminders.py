"""Reminders that something is about to be too late, and the staff digest."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils.translation import gettext as _

from compensation.models import Disconnect, DisconnectStatus, Incident, IncidentStatus, Outcome
from compensation.services.policy import policy_current
from members.models import NotificationKind, User
from members.services.notify import Message, local_time, notify_many

from .models import OPEN_STATUSES, Appeal
from .services import appeal_deadline

# Disconnects whose credit fell short: worth an appeal before the window ends.
NOT_FULLY_CREDITED = (Outcome.CAPPED, Outcome.PARTLY_CAPPED, Outcome.NOT_ELIGIBLE, Outcome.PENDING)


def appeal_window_reminders(*, now: datetime) -> int:
    """Remind members, a configurable time before the appeal deadline, of a
    disconnect that was not fully credited and has no appeal yet. Each
    disconnect is reminded once (deduplicated by its id)."""
    policy = policy_current()
    window = timedelta(hours=policy.appeal_window_hours)
    before = timedelta(hours=settings.APPEAL_REMINDER_HOURS_BEFORE)
    # deadline = ended_at + window; remind when now >= deadline - before and now < deadline
    due = (
        Disconnect.objects.filter(
            status=DisconnectStatus.CLOSED,
            outcome__in=NOT_FULLY_CREDITED,
            ended_at__lte=now - window + before,
            ended_at__gt=now - window,
        )
        .exclude(outcome_reason="membership_inactive")
        .annotate(appealed=Exists(Appeal.objects.filter(disconnect=OuterRef("pk"))))
        .filter(appealed=False)
        .select_related("member", "node")[:5000]
    )
    messages = []
    for disconnect in due:
        deadline = appeal_deadline(end=disconnect.ended_at)

        def render(d=disconnect, deadline=deadline):
            return (
                _("Appeal window closing for your disconnect on %(node)s") % {"node": d.node.name},
                _(
                    "Your disconnect of %(start)s was not fully credited. If you want to appeal, do it before %(deadline)s."
                )
                % {
                    "start": local_time(d.started_at, d.member.timezone),
                    "deadline": local_time(deadline, d.member.timezone),
                },
                reverse("appeals:new") + f"?disconnect={d.public_id}",
            )

        messages.append(
            Message(
                kind=NotificationKind.APPEAL_WINDOW_CLOSING,
                dedupe_key=f"window-closing:{disconnect.public_id}",
                member_id=disconnect.member_id,
                render=render,
            )
        )
    notify_many(messages=messages, now=now)
    return len(messages)


def staff_digest(*, now: datetime) -> int:
    """Overdue appeals and open incidents, to every reviewer and supervisor
    (once per day per person)."""
    overdue = Appeal.objects.overdue(now).count()
    waiting = Appeal.objects.filter(status__in=OPEN_STATUSES).count()
    incidents = list(
        Incident.objects.filter(status=IncidentStatus.OPEN).order_by("started_at")[:20]
    )
    if not overdue and not waiting and not incidents:
        return 0
    staff = User.objects.filter(
        is_active=True, is_staff=True, groups__name__in=["Reviewers", "Supervisors", "Operators"]
    ).distinct()

    def render():
        lines = [
            _("Open appeals: %(n)d, of which overdue for a first response: %(o)d.")
            % {"n": waiting, "o": overdue}
        ]
        for incident in incidents:
            lines.append(
                _("Open incident: %(title)s (since %(start)s)")
                % {"title": incident.title, "start": incident.started_at.strftime("%Y-%m-%d %H:%M")}
            )
        return (
            _("Staff digest: %(o)d overdue appeals, %(i)d open incidents")
            % {"o": overdue, "i": len(incidents)},
            "\n".join(lines),
            "/admin/appeals/appeal/?overdue=yes",
        )

    day = now.strftime("%Y-%m-%d")
    notify_many(
        messages=[
            Message(
                kind=NotificationKind.STAFF_DIGEST,
                dedupe_key=f"digest:{day}:{user.pk}",
                user_id=user.pk,
                render=render,
            )
            for user in staff
        ],
        now=now,
    )
    return staff.count()
