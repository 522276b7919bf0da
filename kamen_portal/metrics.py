"""Prometheus metrics kept in the shared cache (Redis in production), so
every gunicorn and Celery process adds to the same counters and one scrape
of /metrics sees them all. Each update is one or two cache operations."""

from __future__ import annotations

import contextlib
import contextvars
import math

from django.core.cache import cache, caches

from .cache import redis_client

PREFIX = "metrics:"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)

COUNTERS = {
    "kamen_heartbeats_ingested_total": "Heartbeats accepted by the ingest API.",
    "kamen_heartbeats_rejected_total": "Heartbeat items rejected by the ingest API.",
    "kamen_detection_passes_total": "Detection passes run.",
}
GAUGES = {
    "kamen_detection_pass_seconds": "Duration of the last detection pass.",
}


# Inside a request (see ``batched``), counter updates wait here and are sent
# with the request's latency in one round trip at its end.
_pending: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "metrics_pending", default=None
)


def _incr(key: str, amount: float = 1) -> None:
    try:
        cache.incr(key, amount)
    except ValueError:
        # First use of the key (or evicted): create it; a racing add is fine.
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)


def _incr_all(updates: list[tuple[str, float]]) -> None:
    """Several counters at once: one pipelined round trip on Redis (INCRBY
    creates a missing key; Django's Redis cache stores ints as plain
    integers), two cache calls per counter elsewhere. Profiled: per-counter
    EXISTS + INCRBY was 8 of a heartbeat request's 11 Redis round trips."""
    backend = caches["default"]
    client = redis_client()
    if client is not None and all(type(a) is int for _k, a in updates):
        pipe = client.pipeline(transaction=False)
        for key, amount in updates:
            pipe.incrby(backend.make_and_validate_key(key), amount)
        pipe.execute()
        return
    for key, amount in updates:
        _incr(key, amount)


@contextlib.contextmanager
def batched():
    """Collect the counter updates made inside the block; ``flush`` sends them."""
    token = _pending.set([])
    try:
        yield
    finally:
        _pending.reset(token)


def incr(name: str, amount: float = 1) -> None:
    if not amount:
        return
    pending = _pending.get()
    if pending is not None:
        pending.append((PREFIX + name, amount))
    else:
        _incr(PREFIX + name, amount)


def set_gauge(name: str, value: float) -> None:
    cache.set(PREFIX + name, value, timeout=None)


def observe_request(seconds: float) -> None:
    """Request latency histogram: increment the first bucket it fits and the
    totals (cumulative buckets are computed when scraped)."""
    bucket = next(b for b in LATENCY_BUCKETS if seconds <= b)
    updates = [
        (f"{PREFIX}latency:{bucket}", 1),
        (f"{PREFIX}latency:count", 1),
        (f"{PREFIX}latency:sum_ms", int(seconds * 1000)),
    ]
    pending = _pending.get()
    if pending:
        updates.extend(pending)
        pending.clear()
    _incr_all(updates)


Sample = float | list[tuple[dict[str, str], float]]


def _label_value(value: str) -> str:
    # The text format's escapes inside a quoted label value.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series(name: str, value: Sample) -> list[str]:
    if not isinstance(value, list):
        return [f"{name} {value}"]
    return [
        name
        + "{"
        + ",".join(f'{k}="{_label_value(str(v))}"' for k, v in sorted(labels.items()))
        + "} "
        + str(sample)
        for labels, sample in value
    ]


def render_exposition(extra: dict[str, tuple[str, Sample]]) -> str:
    """The Prometheus text format: counters, gauges, the latency histogram,
    and ``extra`` gauges computed at scrape time (one value, or a list of
    (labels, value) samples). It passes ``promtool check metrics``: gauges
    are not named ``_total`` and durations are in seconds."""
    keys = [PREFIX + n for n in (*COUNTERS, *GAUGES)]
    keys += [f"{PREFIX}latency:{b}" for b in LATENCY_BUCKETS] + [
        f"{PREFIX}latency:count",
        f"{PREFIX}latency:sum_ms",
    ]
    values = cache.get_many(keys)
    lines = []
    for name, help_text in COUNTERS.items():
        lines += [
            f"# HELP {name} {help_text}",
            f"# TYPE {name} counter",
            f"{name} {values.get(PREFIX + name, 0)}",
        ]
    for name, help_text in GAUGES.items():
        lines += [
            f"# HELP {name} {help_text}",
            f"# TYPE {name} gauge",
            f"{name} {values.get(PREFIX + name, 0)}",
        ]
    lines += [
        "# HELP kamen_http_request_duration_seconds Request latency.",
        "# TYPE kamen_http_request_duration_seconds histogram",
    ]
    cumulative = 0
    for bucket in LATENCY_BUCKETS:
        cumulative += values.get(f"{PREFIX}latency:{bucket}", 0)
        le = "+Inf" if bucket == math.inf else str(bucket)
        lines.append(f'kamen_http_request_duration_seconds_bucket{{le="{le}"}} {cumulative}')
    lines.append(
        f"kamen_http_request_duration_seconds_count {values.get(f'{PREFIX}latency:count', 0)}"
    )
    lines.append(
        f"kamen_http_request_duration_seconds_sum {values.get(f'{PREFIX}latency:sum_ms', 0) / 1000}"
    )
    for name, (help_text, value) in extra.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *_series(name, value)]
    return "\n".join(lines) + "\n"


# Gauges the apps above compute from their own tables (e.g. ledger totals):
# this layer cannot import them, so each registers a collector returning
# {name: (help, value)} in its AppConfig.ready().
_COLLECTORS: list = []


def register_collector(collector) -> None:
    if collector not in _COLLECTORS:
        _COLLECTORS.append(collector)


def collectors() -> list:
    return list(_COLLECTORS)
