"""The online health model of a service node: pure, no Django.

Every detection pass gives one :class:`Observation` of a node, made of what
the portal already receives: sessions live on it, disconnects detected since
the last pass, sessions currently silent (open disconnects), sessions whose
last beat is late (behind the node's watermark by more than a beat interval
but not yet a disconnect), seconds since the node last delivered a batch
(portal clock), and how far the node's watermark moved.

Four rates are judged against the node's *own* baseline for that hour of the
week (its seasonal baseline) using robust statistics:

- each metric keeps a rolling window of recent normal values (median and
  MAD: robust to the outliers a fault produces);
- once an hour, the window's median and MAD are folded into the slot of
  that hour-of-week with an exponentially weighted average, so next week's
  Tuesday 20:00 is judged against this Tuesday's 20:00;
- a slot seen fewer than ``MIN_SLOT_HOURS`` times falls back on the node's
  global window (cold start).

Each pass scores every metric as a one-sided robust z (only the bad
direction counts; a scale floor from binomial noise keeps a node with few
sessions from alarming on one drop), winsorised so that one pass alone can
never raise the alarm. The evidence accumulates in a CUSUM: a persistent
small shift (gradual degradation) crosses the threshold well before a fixed
absolute threshold would, and an isolated spike (a node clock step, a
single dropped batch) does not. Hysteresis keeps a flapping node in one
episode. During an episode only one pass in ``SLOW_LEARN_EVERY`` is learned:
a fault is not absorbed in the minutes it takes to see it, while a lasting
change of level becomes the new baseline within a couple of hours.

A node clock step (the watermark moving much more or less than wall time)
makes lateness, which is measured on node time, meaningless for a while: the
model skips that metric for ``SKEW_HOLD_PASSES`` passes instead of alarming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

METRICS = ("drop", "silent", "late", "lag")
WINDOW = 120  # observations kept per metric (1 hour at one pass per 30 s)
MIN_OBSERVATIONS = 20  # learning until then: never alarms
MIN_SLOT_HOURS = 1
REFRESH_EVERY = 10
SLOT_ALPHA = 0.3
Z_CAP = 6.0  # one pass contributes at most this much evidence
SLACK = 2.0  # CUSUM allowance per pass: normal noise drains the sum
DEGRADED_AT = 10.0
FAILING_AT = 40.0
CLEAR_BELOW = 1.0
CLEAR_PASSES = 10  # 5 minutes at one pass per 30 s
LEARN_BELOW_Z = 4.0
SLOW_LEARN_EVERY = 4
SKEW_TOLERANCE_S = 20.0
SKEW_HOLD_PASSES = 4
# Scale floors: the smallest deviation that can mean anything for each
# metric (share of sessions; seconds for the lag). Silent sessions linger for
# minutes, so their count wanders more than a per-pass binomial suggests.
FLOORS = {"drop": 0.01, "silent": 0.04, "late": 0.02, "lag": 10.0}
# A node that delivered nothing for this long is failing whatever the
# baseline says (the node-incident rule takes over at the threshold).
LAG_FAILING_S = 120.0
MIN_SILENT_FAILING = 5

HEALTHY, DEGRADED, FAILING, LEARNING = "healthy", "degraded", "failing", "learning"


@dataclass(frozen=True)
class Observation:
    at: datetime  # portal time of the pass
    active: int  # live sessions
    drops: int  # disconnects detected since the previous pass
    silent: int  # open disconnects (silent sessions)
    late: int  # live sessions whose last beat is late
    since_arrival_s: float  # seconds since the node's last batch arrived
    watermark_advance_s: float | None = None  # node-time movement since last pass
    wall_advance_s: float | None = None  # portal-time movement since last pass


@dataclass(frozen=True)
class Verdict:
    state: str
    score: float  # 0 (failing) .. 100 (healthy)
    evidence: float  # CUSUM value
    z: dict[str, float]
    changed: bool  # state changed in this pass
    episode_started: bool  # healthy/learning -> degraded/failing


def features(obs: Observation) -> dict[str, float]:
    sessions = max(obs.active + obs.silent, 1)
    return {
        "drop": obs.drops / max(obs.active + obs.drops, 1),
        "silent": obs.silent / sessions,
        "late": obs.late / max(obs.active, 1),
        "lag": max(obs.since_arrival_s, 0.0),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def robust(values: list[float]) -> tuple[float, float]:
    """(median, MAD) of ``values``."""
    med = _median(values)
    return med, _median([abs(v - med) for v in values])


def hour_of_week(at: datetime) -> int:
    return at.weekday() * 24 + at.hour


def new_state() -> dict:
    return {
        "n": 0,
        "window": {m: [] for m in METRICS},
        "slots": {},  # "h" -> {metric: [median, mad, hours seen]}
        "hour": None,
        "cusum": 0.0,
        "state": LEARNING,
        "calm": 0,
        "skew_hold": 0,
    }


def _refresh_global(state: dict) -> None:
    """The node's global (all-hours) median and MAD per metric: recomputed
    every ``REFRESH_EVERY`` learned passes, not every pass (sorting the
    windows dominates the cost of a step)."""
    n = state["n"]
    if "base" in state and n - state.get("base_n", 0) < (
        1 if n < MIN_OBSERVATIONS else REFRESH_EVERY
    ):
        return
    state["base"] = {m: list(robust(w)) for m, w in state["window"].items() if w}
    state["base_n"] = n


def _baseline(state: dict, metric: str, how: int) -> tuple[float, float]:
    glob = state.get("base", {}).get(metric)
    slot = state["slots"].get(str(how), {}).get(metric)
    if slot and slot[2] >= MIN_SLOT_HOURS:
        med, mad = slot[0], slot[1]
        if glob:
            # A fresh slot is still noisy: never judge more strictly than the
            # node's recent global spread.
            mad = max(mad, glob[1] * 0.5)
        return med, mad
    return (glob[0], glob[1]) if glob else (0.0, 0.0)


def _scale(metric: str, med: float, mad: float, obs: Observation) -> float:
    robust_sd = 1.4826 * mad
    if metric == "lag":
        return max(robust_sd, FLOORS["lag"])
    # Binomial noise of a share over this many sessions: with 20 sessions one
    # drop is 5 points, not a six-sigma event.
    n = max(obs.active + obs.silent, 1)
    p = min(max(med, 1.0 / n), 0.5)
    return max(robust_sd, math.sqrt(p * (1 - p) / n), FLOORS[metric])


def _fold_hour(state: dict, hour: int) -> None:
    slot = state["slots"].setdefault(str(hour), {})
    for metric in METRICS:
        window = state["window"][metric]
        if not window:
            continue
        med, mad = robust(window[-WINDOW // 2 :])
        if metric in slot:
            old = slot[metric]
            slot[metric] = [
                round((1 - SLOT_ALPHA) * old[0] + SLOT_ALPHA * med, 6),
                round((1 - SLOT_ALPHA) * old[1] + SLOT_ALPHA * mad, 6),
                old[2] + 1,
            ]
        else:
            slot[metric] = [round(med, 6), round(mad, 6), 1]


def step(state: dict, obs: Observation) -> Verdict:
    """Update ``state`` (a JSON-able dict from :func:`new_state`) with one
    observation and return the node's verdict for this pass."""
    how = hour_of_week(obs.at)
    if state["hour"] is not None and state["hour"] != how:
        _fold_hour(state, state["hour"])
    state["hour"] = how

    if (
        obs.watermark_advance_s is not None
        and obs.wall_advance_s is not None
        and abs(obs.watermark_advance_s - obs.wall_advance_s) > SKEW_TOLERANCE_S
        and obs.since_arrival_s < LAG_FAILING_S
    ):
        state["skew_hold"] = SKEW_HOLD_PASSES
    skew = state["skew_hold"] > 0
    state["skew_hold"] = max(state["skew_hold"] - 1, 0)

    values = features(obs)
    _refresh_global(state)
    z: dict[str, float] = {}
    for metric in METRICS:
        if metric == "late" and skew:
            z[metric] = 0.0
            continue
        med, mad = _baseline(state, metric, how)
        deviation = values[metric] - med
        z[metric] = min(max(deviation / _scale(metric, med, mad, obs), 0.0), Z_CAP)

    learning = state["n"] < MIN_OBSERVATIONS
    ranked = sorted(z.values(), reverse=True)
    # Corroboration: a second bad signal adds half its weight.
    evidence = ranked[0] + 0.5 * ranked[1]
    previous = state["state"]
    if learning:
        state["cusum"] = 0.0
    else:
        state["cusum"] = max(0.0, state["cusum"] + evidence - SLACK)
        state["cusum"] = min(state["cusum"], FAILING_AT * 1.25)

    # Beyond any baseline: a node with sessions that delivered nothing for
    # two minutes, or most of a node's sessions silent (not one of two).
    hard_fail = (obs.since_arrival_s >= LAG_FAILING_S and obs.active > 0) or (
        values["silent"] >= 0.5 and obs.silent >= MIN_SILENT_FAILING
    )
    if learning and not hard_fail:
        new = LEARNING
    elif hard_fail or state["cusum"] >= FAILING_AT:
        new = FAILING
    elif state["cusum"] >= DEGRADED_AT:
        new = DEGRADED
    elif previous in (DEGRADED, FAILING):
        # Hysteresis: stay in the episode until calm for CLEAR_PASSES passes.
        state["calm"] = state["calm"] + 1 if state["cusum"] < CLEAR_BELOW else 0
        new = HEALTHY if state["calm"] >= CLEAR_PASSES else DEGRADED
    else:
        new = HEALTHY
    if new in (DEGRADED, FAILING) and state["cusum"] >= DEGRADED_AT:
        state["calm"] = 0

    # What is learned: every normal pass except outright spikes; during an
    # episode, one pass in SLOW_LEARN_EVERY, so a fault is not absorbed within
    # the minutes it takes to detect, but a lasting change of level (a busier
    # evening, a new normal after maintenance) becomes the baseline within a
    # couple of hours instead of holding the node degraded forever.
    if new in (DEGRADED, FAILING):
        state["episode_passes"] = state.get("episode_passes", 0) + 1
        learn = state["episode_passes"] % SLOW_LEARN_EVERY == 0
    else:
        state["episode_passes"] = 0
        learn = learning or ranked[0] < LEARN_BELOW_Z
    if learn and not hard_fail:
        for metric in METRICS:
            if metric == "late" and skew:
                continue
            window = state["window"][metric]
            window.append(round(values[metric], 6))
            del window[:-WINDOW]
        state["n"] += 1

    state["state"] = new
    score = 100.0 * math.exp(-state["cusum"] / DEGRADED_AT)
    if new == FAILING:
        score = min(score, 10.0)
    return Verdict(
        state=new,
        score=round(score, 1),
        evidence=round(state["cusum"], 3),
        z={k: round(v, 3) for k, v in z.items()},
        changed=new != previous,
        episode_started=new in (DEGRADED, FAILING) and previous not in (DEGRADED, FAILING),
    )
