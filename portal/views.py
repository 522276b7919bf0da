"""Pages that compose several apps."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from compensation.selectors import member_disconnects, member_ledger
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
    now = timezone.now()
    profile = member_profile_for_user(user=request.user)
    context = {"profile": profile, "now": now}
    if profile is not None:
        remaining = profile.remaining(now=now)
        context.update(
            recent_disconnects=list(member_disconnects(member=profile)[:5]),
            recent_entries=list(member_ledger(member=profile)[:5]),
            membership_active=profile.membership_is_active(now=now),
            remaining_days=remaining.days,
            remaining_hours=remaining.seconds // 3600,
        )
    return render(request, "portal/dashboard.html", context)
