"""Uptime arithmetic of the status page: pure, no Django (like intervals.py).

The rule, as published on /status/:

- Downtime is the union of a node's outage intervals (detected node outages
  and declared outages, node-wide or platform-wide), so overlapping incidents
  count once.
- Announced maintenance is not downtime: its window is cut out of the outage
  and degraded intervals (a node silent during its own maintenance is the
  maintenance). It still counts as observed time.
- Degraded performance (a mass disconnect, a declared slowdown) is not
  downtime either; it only colours the day.
- Observed time starts when the node was added and ends now (or when the
  node was retired): days outside it are "no data", and the uptime percentage is downtime over observed
  time, truncated (never rounded up) to two decimals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from .intervals import Interval, clip, normalize, subtract

OPERATIONAL = "operational"
DEGRADED = "degraded"
OUTAGE = "outage"
MAINTENANCE = "maintenance"
NO_DATA = "no_data"


def _seconds(intervals: Iterable[Interval]) -> float:
    return sum((end - start).total_seconds() for start, end in intervals)


@dataclass(frozen=True)
class Day:
    """One bar: a calendar day in the portal's time zone."""

    start: datetime
    end: datetime
    observed: float  # seconds of the day the node existed (up to now)
    down: float
    degraded: float
    maintenance: float

    @property
    def state(self) -> str:
        if self.observed <= 0:
            return NO_DATA
        if self.down > 0:
            return OUTAGE
        if self.degraded > 0:
            return DEGRADED
        if self.maintenance > 0:
            return MAINTENANCE
        return OPERATIONAL

    @property
    def uptime(self) -> Decimal | None:
        return uptime_percent(observed=self.observed, down=self.down)

    @property
    def down_minutes(self) -> int:
        return math.ceil(self.down / 60)

    @property
    def degraded_minutes(self) -> int:
        return math.ceil(self.degraded / 60)

    @property
    def maintenance_minutes(self) -> int:
        return math.ceil(self.maintenance / 60)


def uptime_percent(*, observed: float, down: float) -> Decimal | None:
    """Percentage of observed time not down, truncated to 0.01 so that any
    downtime at all shows below 100.00. None when nothing was observed."""
    if observed <= 0:
        return None
    ratio = Decimal(str(max(observed - down, 0.0))) / Decimal(str(observed)) * 100
    return ratio.quantize(Decimal("0.01"), rounding=ROUND_DOWN)


@dataclass(frozen=True)
class NodeTimeline:
    """What happened to one node over the window, as disjoint interval sets."""

    down: list[Interval]
    degraded: list[Interval]
    maintenance: list[Interval]


def node_timeline(
    *, outages: Iterable[Interval], degraded: Iterable[Interval], maintenance: Iterable[Interval]
) -> NodeTimeline:
    """Apply the precedence maintenance > outage > degraded, so every second
    is counted in at most one class."""
    maint = normalize(maintenance)
    down = subtract(outages, maint)
    slow = subtract(subtract(degraded, maint), down)
    return NodeTimeline(down=down, degraded=slow, maintenance=maint)


def days_of(
    timeline: NodeTimeline,
    *,
    bounds: list[Interval],
    observed_from: datetime,
    now: datetime,
    observed_until: datetime | None = None,
) -> list[Day]:
    """One Day per ``bounds`` entry (the calendar days, oldest first).
    ``observed_until`` ends a retired node's observed time at its
    retirement: the days after it are "no data", not uptime."""
    last = min(now, observed_until) if observed_until is not None else now
    days = []
    for start, end in bounds:
        seen_start, seen_end = max(start, observed_from), min(end, last)
        if seen_end <= seen_start:
            days.append(Day(start, end, 0.0, 0.0, 0.0, 0.0))
            continue
        window = {"start": seen_start, "end": seen_end}
        days.append(
            Day(
                start=start,
                end=end,
                observed=(seen_end - seen_start).total_seconds(),
                down=_seconds(clip(timeline.down, **window)),
                degraded=_seconds(clip(timeline.degraded, **window)),
                maintenance=_seconds(clip(timeline.maintenance, **window)),
            )
        )
    return days


def window_uptime(days: list[Day]) -> Decimal | None:
    return uptime_percent(observed=sum(d.observed for d in days), down=sum(d.down for d in days))
