from datetime import timedelta

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()


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
