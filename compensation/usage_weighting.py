"""Usage profiles and usage-weighted credit: pure arithmetic, no Django.

A member's usage profile is a count of active minutes per hour-of-week
(0 = Monday 00:00-01:00 in the member's own time zone, 167 = Sunday
23:00-24:00), kept per calendar week so a rolling window can drop whole old
weeks: ``{"2026-11-23": [168 counts]}`` (the key is the week's Monday). No
raw trail is kept: only these counts.

Weighting (policy option, DESIGN section 4 "personalisation only adds"): a
lost second in hour-of-week ``h`` weighs

    w(h) = min(ceiling, max(1, usage(h) / mean usage over the 168 hours))

so the floor is 1.0 (never less than the base credit) and the policy sets the
ceiling. A claim's factor is the lost-time-weighted mean of ``w`` over its
lost intervals, rounded *down* to 0.01 (so it never exceeds the ceiling and
never drops below 1.00), and the credited minutes are those of the base ratio
times that factor, before caps. The caps and the pay-once union are applied
by the caller exactly as without weighting.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

HOURS_PER_WEEK = 168
ONE = Decimal("1.00")
CENT = Decimal("0.01")
# Below this much observed use in the window a profile says nothing reliable
# about habits: every hour weighs 1.0.
MIN_PROFILE_MINUTES = 120

Interval = tuple[datetime, datetime]
Weeks = dict[str, list[int]]


def hour_of_week(local: datetime) -> int:
    return local.weekday() * 24 + local.hour


def week_key(local: datetime | date) -> str:
    day = local.date() if isinstance(local, datetime) else local
    return (day - timedelta(days=day.weekday())).isoformat()


def prune(weeks: Weeks, *, today: date, window_days: int) -> Weeks:
    """Keep the weeks that overlap the rolling window ending ``today``."""
    oldest = week_key(today - timedelta(days=max(window_days, 1) - 1))
    return {k: v for k, v in weeks.items() if k >= oldest}


def add_minutes(weeks: Weeks, *, at_local: datetime, minutes: int, window_days: int) -> Weeks:
    """``weeks`` with ``minutes`` of activity added at ``at_local`` (a
    member-local time), older weeks dropped."""
    key = week_key(at_local)
    counts = list(weeks.get(key) or [0] * HOURS_PER_WEEK)
    if len(counts) != HOURS_PER_WEEK:
        counts = [0] * HOURS_PER_WEEK
    hour = hour_of_week(at_local)
    # One hour of one week holds at most 60 minutes, however many sessions.
    counts[hour] = min(counts[hour] + max(minutes, 0), 60)
    result = dict(weeks)
    result[key] = counts
    return prune(result, today=at_local.date(), window_days=window_days)


def fold(weeks: Weeks, *, today: date, window_days: int) -> list[int]:
    """Total active minutes per hour-of-week over the window."""
    totals = [0] * HOURS_PER_WEEK
    for counts in prune(weeks, today=today, window_days=window_days).values():
        if len(counts) == HOURS_PER_WEEK:
            for h, c in enumerate(counts):
                totals[h] += max(int(c), 0)
    return totals


def hour_weights(profile: list[int], *, ceiling: Decimal) -> list[Decimal]:
    """w(h) for every hour-of-week, each in [1.00, ceiling]."""
    ceiling = max(Decimal(ceiling), ONE)
    total = sum(profile)
    if len(profile) != HOURS_PER_WEEK or total < MIN_PROFILE_MINUTES:
        return [ONE] * HOURS_PER_WEEK
    mean = Decimal(total) / HOURS_PER_WEEK
    return [min(ceiling, max(ONE, Decimal(c) / mean)) for c in profile]


@dataclass(frozen=True)
class Weighting:
    """What weighting did to one claim, as recorded in its ledger entry."""

    factor: Decimal  # in [1.00, ceiling], 2 decimals
    ceiling: Decimal
    habit_from: str  # "20:00": the habitual hours the heaviest lost minute fell in
    habit_to: str  # "23:00"
    timezone: str

    def as_json(self) -> dict:
        return {
            "factor": str(self.factor),
            "ceiling": str(self.ceiling),
            "habit_from": self.habit_from,
            "habit_to": self.habit_to,
            "timezone": self.timezone,
        }


def _split_by_hour(intervals: Iterable[Interval], tz: zoneinfo.ZoneInfo):
    """(hour-of-week, seconds) pieces of ``intervals`` in local time."""
    for start, end in intervals:
        cursor = start
        while cursor < end:
            local = cursor.astimezone(tz)
            next_hour = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            step_end = min(end, next_hour.astimezone(start.tzinfo))
            if step_end <= cursor:  # a DST fold: move on by the wall hour
                step_end = min(end, cursor + timedelta(hours=1))
            yield hour_of_week(local), (step_end - cursor).total_seconds()
            cursor = step_end


def _habit_run(weights: list[Decimal], hour: int) -> tuple[int, int]:
    """The run of consecutive above-average hours around ``hour`` (within a
    day), as (first hour, hour after the last)."""
    day = hour - hour % 24
    lo = hour
    while lo > day and weights[lo - 1] > ONE:
        lo -= 1
    hi = hour + 1
    while hi < day + 24 and weights[hi] > ONE:
        hi += 1
    return lo % 24, (hi - day)


def weigh(
    intervals: list[Interval], *, profile: list[int], ceiling: Decimal, timezone: str
) -> Weighting | None:
    """The factor for lost ``intervals`` under a member's ``profile``, or None
    when no lost minute falls in an above-average hour (factor 1: nothing to
    record or explain)."""
    try:
        tz = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz, timezone = zoneinfo.ZoneInfo("UTC"), "UTC"
    weights = hour_weights(profile, ceiling=ceiling)
    lost = Decimal(0)
    weighted = Decimal(0)
    heaviest: tuple[Decimal, int] | None = None
    for hour, seconds in _split_by_hour(intervals, tz):
        s = Decimal(str(seconds))
        lost += s
        weighted += s * weights[hour]
        if weights[hour] > ONE and (heaviest is None or s * weights[hour] > heaviest[0]):
            heaviest = (s * weights[hour], hour)
    if lost <= 0 or heaviest is None:
        return None
    ceiling = max(Decimal(ceiling), ONE).quantize(CENT, rounding=ROUND_FLOOR)
    factor = min(ceiling, max(ONE, (weighted / lost).quantize(CENT, rounding=ROUND_FLOOR)))
    if factor == ONE:
        return None
    start, end = _habit_run(weights, heaviest[1])
    return Weighting(
        factor=factor,
        ceiling=ceiling,
        habit_from=f"{start:02d}:00",
        habit_to=f"{end:02d}:00",
        timezone=timezone,
    )
