"""Pages that compose several apps."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.models import OPEN_STATUSES
from appeals.selectors import member_appeals
from compensation.selectors import (
    member_cap_usage,
    member_credited_since,
    member_disconnects,
    member_ledger,
)
from compensation.services.policy import policy_current
from compensation.status import incident_kinds
from members.models import MemberStatus
from members.selectors import member_profile_for_user

from . import dashboard


def ops_dashboard(request: HttpRequest) -> HttpResponse:
    """Operators' view (wrapped by the admin site: staff only; the role must
    hold view_ops_dashboard)."""
    if not request.user.has_perm("compensation.view_ops_dashboard"):
        raise PermissionDenied
    now = timezone.now()
    per_node = dashboard.disconnects_per_node_per_hour(now=now)
    credited = dashboard.minutes_credited_per_day(now=now)
    context = {
        **admin.site.each_context(request),
        "title": _("Operations"),
        "per_node_svg": dashboard.svg_bars(per_node, title=_("disconnects per node per hour")),
        "credited_svg": dashboard.svg_bars(credited, title=_("minutes credited per day")),
        "per_node_since": per_node["since"],
        "queue": dashboard.appeal_queue(now=now),
        "notifications": dashboard.notification_health(now=now),
        "incidents": dashboard.incidents_summary(),
    }
    return render(request, "admin/ops_dashboard.html", context)


@login_required
def member_dashboard(request: HttpRequest) -> HttpResponse:
    """ "Am I whole?": membership and its expiry, what was credited this month,
    the 30-day cap, open appeals with their deadlines, recent activity."""
    now = timezone.now()
    profile = member_profile_for_user(user=request.user)
    context = {"profile": profile, "now": now}
    if profile is not None:
        entries = list(member_ledger(member=profile)[:5])
        policy = policy_current()
        month_start = timezone.localtime(now).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        open_appeals = list(
            member_appeals(member=profile)
            .filter(status__in=OPEN_STATUSES)
            .order_by("sla_due_at")[:5]
        )
        context.update(
            recent_disconnects=list(member_disconnects(member=profile)[:5]),
            recent_entries=entries,
            incident_kinds=incident_kinds(
                e.source_ref for e in entries if e.source_kind == "incident"
            ),
            membership_active=profile.membership_is_active(now=now),
            credited_this_month=member_credited_since(member=profile, since=month_start),
            cap=member_cap_usage(member=profile, now=now, policy=policy),
            open_appeals=open_appeals,
            account_ok=profile.status == MemberStatus.ACTIVE,
            remaining_days=profile.remaining(now=now).days,
        )
    return render(request, "portal/dashboard.html", context)
