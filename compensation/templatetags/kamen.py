from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from compensation.status import PHASE_LABELS, ComponentState, incident_phase, latest_update
from compensation.status import incident_label as _incident_label
from compensation.status import source_label as _source_label
from members.deadlines import duration_left

register = template.Library()


@register.filter
def time_left(value) -> str:
    """The time until ``value`` alone ("180 d 0 h"), for a field already
    labelled "Remaining" (the deadline filters add their own "left")."""
    if not value:
        return "—"
    return duration_left(int((value - timezone.now()).total_seconds()))


@register.filter
def days_of(minutes) -> int:
    """Whole days in a number of minutes (a card key's entry)."""
    try:
        return int(minutes) // (24 * 60)
    except (TypeError, ValueError):
        return 0


@register.filter
def minutes_human(value) -> str:
    """1,500 -> "1 day 1 h" / "1 天 1 小时"; 12 -> "12 min"."""
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        return ""
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(ngettext("%(n)d day", "%(n)d days", days) % {"n": days})
    if hours:
        parts.append(_("%(n)d h") % {"n": hours})
    if mins or not parts:
        parts.append(_("%(n)d min") % {"n": mins})
    return sign + " ".join(parts)


@register.filter
def duration_human(value) -> str:
    if not isinstance(value, timedelta):
        return ""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    return minutes_human((seconds + 59) // 60)


@register.filter
def incident_label(incident) -> str:
    """故障 or 维护: the same word for the same incident on every page."""
    return _incident_label(incident)


@register.filter
def state_label(state: str) -> str:
    """A component or day state ("outage", "no_data", ...) in words."""
    return str(ComponentState.LABELS.get(state, state))


@register.filter(name="incident_phase")
def incident_phase_label(incident) -> str:
    """Scheduled / in progress / completed for maintenance; ongoing /
    resolved for incidents."""
    return str(PHASE_LABELS[incident_phase(incident, timezone.now())])


@register.filter(name="latest_update")
def latest_update_filter(incident):
    return latest_update(incident)


@register.filter
def incident_phase_code(incident) -> str:
    return incident_phase(incident, timezone.now())


@register.filter
def source_label(entry, kinds=None) -> str:
    """A ledger entry's source in words; pass the view's ``incident_kinds``
    map to avoid a query per incident entry."""
    return _source_label(entry, kinds)
