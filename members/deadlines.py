"""Deadlines that cannot be misread: the time left and the moment itself,
together, in the reader's time zone ("剩余 23 小时 33 分（截至 12-01 18:09）").

The one formatter for every deadline the portal shows (appeal windows, staff
reply deadlines, the dashboard, admin). Pure apart from the active language
and time zone, which the caller may override.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.utils import dateformat, timezone
from django.utils.translation import gettext as _

WINDOW = "window"  # a window that closes (appeal filing): past = "closed"
DUE = "due"  # something owed by then (staff reply): past = "overdue"


@dataclass(frozen=True)
class DeadlineText:
    relative: str  # "23 h 33 min left" / "closed"
    absolute: str  # "1 Dec 18:09"
    full: str  # both, as one sentence
    past: bool
    urgent: bool  # under 3 hours left


def _zone(tz: str | None):
    if not tz:
        return None
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def deadline_absolute(
    value: datetime, *, now: datetime | None = None, tz: str | None = None
) -> str:
    """The moment in the reader's zone, with the year only when it is not this year."""
    now = now or timezone.now()
    zone = _zone(tz)
    local = timezone.localtime(value, zone) if zone else timezone.localtime(value)
    local_now = timezone.localtime(now, zone) if zone else timezone.localtime(now)
    # Translators: date format of deadlines (Django date syntax), this year.
    fmt = _("j M H:i") if local.year == local_now.year else _("j M Y H:i")
    return dateformat.format(local, fmt)


def duration_left(seconds: int) -> str:
    """Minute precision, two units at most: "2 d 3 h", "23 h 33 min", "7 min"."""
    minutes = max(seconds, 0) // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    # The same shapes as the templates countdown.js fills in.
    if days:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": mins}
    return _("%(m)d min") % {"m": mins}


def deadline_text(
    value: datetime, *, kind: str = WINDOW, now: datetime | None = None, tz: str | None = None
) -> DeadlineText:
    now = now or timezone.now()
    absolute = deadline_absolute(value, now=now, tz=tz)
    left = int((value - now).total_seconds())
    if left <= 0:
        if kind == DUE:
            relative = _("overdue")
            full = _("overdue since %(when)s") % {"when": absolute}
        else:
            relative = _("closed")
            full = _("closed at %(when)s") % {"when": absolute}
        return DeadlineText(relative, absolute, full, past=True, urgent=False)
    if left < 60:
        relative = _("less than 1 min left")
    else:
        relative = _("%(left)s left") % {"left": duration_left(left)}
    full = _("%(left)s (until %(when)s)") % {"left": relative, "when": absolute}
    return DeadlineText(relative, absolute, full, past=False, urgent=left < 3 * 3600)
