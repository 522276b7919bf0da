"""Rerunnable evaluation of the node health model (issue 14 item 7).

A generator of labelled synthetic node traces and a replay harness that runs
the real model (``compensation.health_model``, the same ``step`` the
detection pass calls) over them, pass by pass, next to a fixed-threshold
baseline of the kind a static alert rule would use. Pure Python, no Django,
deterministic per seed: ``make test`` runs a small seed set and asserts the
targets; ``make bench`` (``python -m benchmarks health``) runs the full set
and writes benchmarks/results/health.json.

A trace is what the detection pass would observe of one node every 30 s:
live sessions, disconnects detected since the previous pass, open
(silent) disconnects, live sessions whose last beat is late, seconds since
the node's last batch arrived, and how far its watermark moved. Sessions
are simulated statistically (binomial drops and late beats around the
node's own load curve), so the features carry the noise a real node's do.

Classes (``FAULT_CLASSES`` are the degradation classes the model must
catch; the others must not raise an alarm):

- steady: constant load;
- diurnal: load and lateness following the evening peak, no fault;
- gradual: drops, lateness and arrival lag rising slowly for 40 minutes;
- flapping: three bad minutes, three good, for half an hour;
- partial: a third of the sessions drop at once and stay away 20 minutes;
- outage: the node delivers nothing for 10 minutes;
- surge: the number of sessions triples within five minutes, no fault;
- skew: the node's clock steps by 40 to 90 seconds a few times (lateness is
  measured on node time, so each step makes everyone look late for a pass).
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from compensation import health_model as hm

PASS_S = 30
CLASSES = ("steady", "diurnal", "gradual", "flapping", "partial", "outage", "surge", "skew")
FAULT_CLASSES = ("gradual", "flapping", "partial", "outage")
QUIET_CLASSES = ("steady", "diurnal", "surge", "skew")
WARMUP_PASSES = 6 * 120  # six hours of normal operation before the segment
SEGMENT_PASSES = 3 * 120  # the evaluated three hours
GRACE_PASSES = 10  # an alarm this soon after a fault ended still belongs to it

# The fixed-threshold baseline: one pass over any absolute limit alarms.
FIXED_LIMITS = {"drop": 0.02, "silent": 0.10, "late": 0.20, "lag": 60.0}


@dataclass
class Trace:
    kind: str
    seed: int
    observations: list[hm.Observation]
    onset: int | None  # index of the first faulty pass (None: no fault)
    end: int | None  # index after the last faulty pass
    warmup: int = WARMUP_PASSES


@dataclass
class Rng:
    r: random.Random

    def binomial(self, n: int, p: float) -> int:
        p = min(max(p, 0.0), 1.0)
        if n <= 0 or p == 0:
            return 0
        if n * p > 30:  # normal approximation for big counts
            return max(0, min(n, round(self.r.gauss(n * p, math.sqrt(n * p * (1 - p))))))
        # Poisson-ish by inversion for small means.
        k, prob, u = 0, (1 - p) ** n, self.r.random()
        total = prob
        while u > total and k < n:
            k += 1
            prob *= (n - k + 1) / k * p / (1 - p)
            total += prob
        return k


def _load(hour: float, amplitude: float) -> float:
    """Relative load over the day: trough at 05:00, peak at 21:00."""
    return 1.0 + amplitude * math.sin(2 * math.pi * (hour - 15.0) / 24.0)


def generate(kind: str, seed: int) -> Trace:
    rng = Rng(random.Random(f"{kind}:{seed}"))
    r = rng.r
    base_sessions = r.randint(60, 400)
    p_drop0 = r.uniform(0.0002, 0.001)
    p_late0 = r.uniform(0.01, 0.05)
    lag0 = r.uniform(2.0, 8.0)
    amplitude = 0.75 if kind == "diurnal" else r.uniform(0.0, 0.3)
    # The diurnal trace evaluates the evening ramp; the others any hour.
    seg_start_hour = 16.0 if kind == "diurnal" else r.uniform(0, 24)
    start = datetime(2026, 11, 2, tzinfo=UTC) + timedelta(
        days=r.randint(0, 6), hours=seg_start_hour - WARMUP_PASSES * PASS_S / 3600
    )
    total = WARMUP_PASSES + SEGMENT_PASSES
    onset = end = None
    if kind in FAULT_CLASSES or kind in ("surge", "skew"):
        onset = WARMUP_PASSES + r.randint(30, 90)
        end = {
            "gradual": total,
            "flapping": onset + 60,
            "partial": onset + 40,
            "outage": onset + 20,
            "surge": total,
            "skew": total,
        }[kind]
    skew_steps = set()
    if kind == "skew":
        skew_steps = {onset + i * r.randint(25, 50) for i in range(4)}

    observations = []
    open_drops: list[int] = []  # remaining passes of each open disconnect
    away = 0  # sessions gone in a partial outage
    last_arrival_lag = 0.0
    for i in range(total):
        at = start + timedelta(seconds=i * PASS_S)
        hour = at.hour + at.minute / 60
        load = _load(hour, amplitude)
        sessions = base_sessions * load
        p_drop, p_late, lag_extra = p_drop0, p_late0, 0.0
        if kind == "diurnal":
            # Busy hours are a little slower on a healthy node too.
            p_late *= 0.6 + 0.8 * (load - 1 + amplitude) / (2 * amplitude)
        faulty = onset is not None and onset <= i < end and kind in FAULT_CLASSES
        if kind == "surge" and i >= onset:
            sessions *= 1 + 2 * min((i - onset) / 10, 1.0)
        if faulty and kind == "gradual":
            ramp = min((i - onset) / 80, 1.0)  # 40 minutes
            p_drop = p_drop0 + ramp * 0.01
            p_late = p_late0 + ramp * 0.25
            lag_extra = ramp * 20
        if faulty and kind == "flapping" and ((i - onset) // 6) % 2 == 0:
            p_drop, p_late, lag_extra = 0.015, 0.35, 15.0
        active = max(int(round(r.gauss(sessions, math.sqrt(sessions)))) - away, 0)
        drops = rng.binomial(active, p_drop)
        if faulty and kind == "partial" and i == onset:
            away = int(active * r.uniform(0.3, 0.4))
            drops += away
            open_drops += [end - onset] * away
            active -= away
        if kind == "partial" and i == end:
            away = 0
        open_drops = [d - 1 for d in open_drops if d > 1]
        open_drops += [r.randint(4, 30) for _ in range(drops - (away if i == onset else 0))]
        late = rng.binomial(active, p_late)
        watermark_advance = PASS_S + r.uniform(-2, 2)
        if i in skew_steps:
            step = r.choice((-1, 1)) * r.uniform(40, 90)
            watermark_advance += step
            if step > 0:
                late = rng.binomial(active, 0.6)
        elif i - 1 in skew_steps:
            late = rng.binomial(active, 0.3)
        if faulty and kind == "outage":
            last_arrival_lag += PASS_S
            watermark_advance = 0.0
            drops, late = 0, 0
        else:
            last_arrival_lag = r.uniform(0, lag0) + lag_extra * r.uniform(0.5, 1.5)
        observations.append(
            hm.Observation(
                at=at,
                active=active,
                drops=drops,
                silent=len(open_drops),
                late=late,
                since_arrival_s=last_arrival_lag,
                watermark_advance_s=watermark_advance,
                wall_advance_s=float(PASS_S),
            )
        )
    labelled_onset = onset if kind in FAULT_CLASSES else None
    labelled_end = end if kind in FAULT_CLASSES else None
    return Trace(kind, seed, observations, labelled_onset, labelled_end)


def fixed_threshold(obs: hm.Observation) -> bool:
    values = hm.features(obs)
    return any(values[m] > limit for m, limit in FIXED_LIMITS.items())


@dataclass
class Replay:
    alarms: list[int] = field(default_factory=list)  # pass index where an alarm episode starts
    first_alarm: int | None = None


def replay_model(trace: Trace) -> Replay:
    state = hm.new_state()
    result = Replay()
    alarmed = False
    for i, obs in enumerate(trace.observations):
        verdict = hm.step(state, obs)
        bad = verdict.state in (hm.DEGRADED, hm.FAILING)
        if bad and not alarmed and i >= trace.warmup:
            result.alarms.append(i)
        alarmed = bad
    return result


def replay_fixed(trace: Trace) -> Replay:
    result = Replay()
    alarmed = False
    for i, obs in enumerate(trace.observations):
        bad = fixed_threshold(obs)
        if bad and not alarmed and i >= trace.warmup:
            result.alarms.append(i)
        alarmed = bad
    return result


def _score(traces: list[Trace], replays: list[Replay]) -> dict:
    tp = fp = 0
    detected = 0
    faults = 0
    ttd: dict[str, list[float]] = {k: [] for k in FAULT_CLASSES}
    missed: dict[str, int] = {k: 0 for k in FAULT_CLASSES}
    false_by_class: dict[str, int] = {k: 0 for k in CLASSES}
    for trace, replay in zip(traces, replays, strict=True):
        hit = None
        for start in replay.alarms:
            if trace.onset is not None and trace.onset <= start < trace.end + GRACE_PASSES:
                tp += 1
                if hit is None and start < trace.end:
                    hit = start
            else:
                fp += 1
                false_by_class[trace.kind] += 1
        if trace.onset is not None:
            faults += 1
            if hit is not None:
                detected += 1
                ttd[trace.kind].append((hit - trace.onset) * PASS_S / 60)
            else:
                missed[trace.kind] += 1
    return {
        "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
        "recall": round(detected / faults, 3) if faults else 1.0,
        "alarm_episodes_true": tp,
        "alarm_episodes_false": fp,
        "false_alarms_by_class": false_by_class,
        "missed_by_class": missed,
        "median_minutes_to_detect": {
            k: (round(statistics.median(v), 2) if v else None) for k, v in ttd.items()
        },
        "_ttd": ttd,
    }


def evaluate(seeds: range | list[int]) -> dict:
    """Run every class for every seed through the model and the baseline;
    return the figures and whether each target is met."""
    started = time.perf_counter()
    traces = [generate(kind, seed) for seed in seeds for kind in CLASSES]
    generated = time.perf_counter()
    model_replays = [replay_model(t) for t in traces]
    replayed = time.perf_counter()
    fixed_replays = [replay_fixed(t) for t in traces]
    model = _score(traces, model_replays)
    fixed = _score(traces, fixed_replays)
    # Lead over the fixed threshold on gradual degradation, per trace both caught.
    leads = []
    for trace, mr, fr in zip(traces, model_replays, fixed_replays, strict=True):
        if trace.kind != "gradual":
            continue
        m = next((a for a in mr.alarms if a >= trace.onset), None)
        f = next((a for a in fr.alarms if a >= trace.onset), None)
        if m is not None:
            # A baseline that never fires within the trace fires "at the end".
            leads.append(((f if f is not None else len(trace.observations)) - m) * PASS_S / 60)
    model_ttd, fixed_ttd = model.pop("_ttd"), fixed.pop("_ttd")
    del model_ttd, fixed_ttd
    lead = round(statistics.median(leads), 2) if leads else None
    quiet_false = {k: model["false_alarms_by_class"][k] for k in ("surge", "diurnal")}
    targets = [
        {
            "metric": "model precision",
            "target": ">= 0.9",
            "value": model["precision"],
            "met": model["precision"] >= 0.9,
        },
        {
            "metric": "model recall (degradation classes)",
            "target": ">= 0.9",
            "value": model["recall"],
            "met": model["recall"] >= 0.9,
        },
        {
            "metric": "alarms on surge and diurnal traces",
            "target": "0",
            "value": sum(quiet_false.values()),
            "met": sum(quiet_false.values()) == 0,
        },
        {
            "metric": "gradual: median minutes detected before the fixed threshold",
            "target": ">= 5",
            "value": lead,
            "met": lead is not None and lead >= 5,
        },
    ]
    return {
        "traces": len(traces),
        "seeds": list(seeds),
        "classes": list(CLASSES),
        "degradation_classes": list(FAULT_CLASSES),
        "pass_seconds": PASS_S,
        "warmup_minutes": WARMUP_PASSES * PASS_S // 60,
        "segment_minutes": SEGMENT_PASSES * PASS_S // 60,
        "model": model,
        "fixed_threshold": {**fixed, "limits": FIXED_LIMITS},
        "gradual_lead_minutes_median": lead,
        "gradual_lead_minutes": sorted(round(x, 2) for x in leads),
        "generate_seconds": round(generated - started, 2),
        "replay_seconds": round(replayed - generated, 2),
        "targets": targets,
    }
