"""Interval, rounding and cap arithmetic of compensation: pure, no Django.

Intervals are half-open ``(start, end)`` pairs of aware datetimes. Everything
here is deterministic and side-effect free so it can be property-tested; the
compensation service and the public policy calculator both call it, so the
published numbers and the credited ones cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

Interval = tuple[datetime, datetime]


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, non-empty; touching intervals are merged."""
    ordered = sorted((s, e) for s, e in intervals if e > s)
    merged: list[Interval] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(intervals: Iterable[Interval], minus: Iterable[Interval]) -> list[Interval]:
    """The parts of ``intervals`` not covered by ``minus``."""
    result: list[Interval] = []
    cuts = normalize(minus)
    for start, end in normalize(intervals):
        cursor = start
        for cut_start, cut_end in cuts:
            if cut_end <= cursor:
                continue
            if cut_start >= end:
                break
            if cut_start > cursor:
                result.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
            if cursor >= end:
                break
        if cursor < end:
            result.append((cursor, end))
    return result


def clip(
    intervals: Iterable[Interval], *, start: datetime | None, end: datetime | None
) -> list[Interval]:
    """Intersect with the window ``[start, end)``; ``None`` means unbounded."""
    result = []
    for s, e in normalize(intervals):
        s2 = s if start is None else max(s, start)
        e2 = e if end is None else min(e, end)
        if e2 > s2:
            result.append((s2, e2))
    return result


def total_seconds(intervals: Iterable[Interval]) -> float:
    return sum((e - s).total_seconds() for s, e in normalize(intervals))


def envelope(intervals: Iterable[Interval]) -> Interval | None:
    """The smallest interval containing all of them (None when empty)."""
    merged = normalize(intervals)
    if not merged:
        return None
    return (merged[0][0], merged[-1][1])


def minutes_from_seconds(seconds: float, ratio: Decimal) -> int:
    """Credited minutes for ``seconds`` lost at ``ratio``, rounded up to the
    minute (policy: a started minute counts as a whole one)."""
    if seconds <= 0 or ratio <= 0:
        return 0
    # Decimal keeps ratios like 1.5 exact; whole seconds avoid float dust
    # turning 720.0000001 s into an extra minute.
    whole_seconds = Decimal(math.ceil(round(seconds, 6)))
    minutes = (whole_seconds * ratio / Decimal(60)).quantize(Decimal(1), rounding=ROUND_CEILING)
    return int(minutes)


@dataclass(frozen=True)
class CreditCalculation:
    """What a loss is worth under the rules, and what the caps withheld."""

    lost_seconds: int
    raw_minutes: int  # ratio applied and rounded, before caps
    event_capped_minutes: int  # withheld by the per-event cap
    window_capped_minutes: int  # withheld by the rolling 30-day cap
    credited_minutes: int

    @property
    def withheld_minutes(self) -> int:
        return self.event_capped_minutes + self.window_capped_minutes


def calculate_credit(
    *,
    lost_seconds: float,
    ratio: Decimal,
    cap_per_event_minutes: int,
    cap_window_minutes: int,
    already_credited_in_window: int,
) -> CreditCalculation:
    """Apply ratio, rounding, the per-event cap and then the rolling-window cap."""
    raw = minutes_from_seconds(lost_seconds, ratio)
    after_event_cap = min(raw, max(cap_per_event_minutes, 0))
    window_room = max(cap_window_minutes - max(already_credited_in_window, 0), 0)
    credited = min(after_event_cap, window_room)
    return CreditCalculation(
        lost_seconds=int(math.ceil(round(max(lost_seconds, 0), 6))),
        raw_minutes=raw,
        event_capped_minutes=raw - after_event_cap,
        window_capped_minutes=after_event_cap - credited,
        credited_minutes=credited,
    )


def extend_expiry(
    *,
    expires_at: datetime,
    minutes: int,
    credited_at: datetime,
    lapsed_extends_from_credit_time: bool,
) -> datetime:
    """New expiry after crediting ``minutes``.

    Normally the paid period is prolonged from the old expiry. When the
    membership has already lapsed at crediting time, the policy may say to
    start from the moment of crediting, so the member can actually use the
    time they are given back.
    """
    base = expires_at
    if lapsed_extends_from_credit_time and expires_at < credited_at:
        base = credited_at
    return base + timedelta(minutes=minutes)
