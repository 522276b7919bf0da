"""The usage profile's part of a member's data export (registered with
members.exports in CompensationConfig.ready): the counts as stored, one row
per week and hour-of-week with any activity."""

from __future__ import annotations

from members.models import MemberProfile, User

from .models import UsageProfile

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def usage_export_section(
    user: User, member: MemberProfile | None, files: dict[str, bytes], tables: dict[str, list]
) -> None:
    rows = tables.setdefault("usage_profile", [])
    if member is None:
        return
    profile = UsageProfile.objects.filter(member=member).first()
    if profile is None:
        return
    for week in sorted(profile.weeks):
        for hour_of_week, minutes in enumerate(profile.weeks[week]):
            if minutes:
                rows.append(
                    {
                        "week_starting": week,
                        "weekday": WEEKDAYS[hour_of_week // 24],
                        "hour": f"{hour_of_week % 24:02d}:00",
                        "active_minutes": minutes,
                        "timezone": member.timezone,
                    }
                )
