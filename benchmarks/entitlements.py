"""Entitlements: look-ups per second and latency through real HTTP, from the
Redis cache.

gunicorn with 2 sync workers serves the real WSGI application (node token
check in PostgreSQL, throttle and entitlement cache in Redis). The cache is
warmed first (one batch pass over every member), so what is measured is the
answer *from the cache*, which is what a node's connect path sees after the
first look-up of a member.

Two phases, each with its own load-generator processes (benchmarks/http_load.py):

- ``batch``: ``POST /api/v1/entitlements/`` with 1,000 member numbers per
  request: look-ups/s = answered members per second (the ≥ 20,000/s target);
- ``single``: ``GET /api/v1/entitlements/<member_no>/``, one member per
  request: the latency a node sees per look-up (the p99 < 5 ms target) and
  single look-ups per second. Latency includes queueing in gunicorn (as many
  clients as workers).

Everything shares the machine's 2 cores: the load generator's CPU use is
reported in ``cpu_cores_by_command``.
"""

from __future__ import annotations

import json
import random
import time

from .harness import (
    BIN,
    Context,
    free_port,
    log,
    percentile,
    start_process,
    stop_process,
    tail,
    target,
)
from .http_load import Client, Request, latency_ms, run_load, wait_until_serving

BATCH = 1000
TARGET_LOOKUPS_PER_S = 20_000
TARGET_P99_MS = 5.0


def params_for(args) -> dict:
    quick = args.quick
    return {
        "members": args.members or (10_000 if quick else 100_000),
        "gunicorn_workers": args.web_workers or 2,
        "batch_clients": args.clients or 2,
        "single_clients": 2,
        "warmup_s": args.warmup if args.warmup is not None else (1.0 if quick else 2.0),
        "duration_s": args.duration or (4.0 if quick else 15.0),
    }


def _requests(index: int, mode: str, token: str, numbers: list[str]) -> list[Request]:
    rng = random.Random(index)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if mode == "single":
        return [
            ("GET", f"/api/v1/entitlements/{n}/", None, headers) for n in rng.sample(numbers, 5000)
        ]
    requests = []
    for _ in range(64):
        rng.shuffle(numbers)
        body = json.dumps({"members": numbers[:BATCH]}).encode()
        requests.append(("POST", "/api/v1/entitlements/", body, headers))
    return requests


def _phase(mode, clients, token, port, numbers, params) -> dict:
    def tally(status: int, data: bytes) -> dict[str, int] | None:
        if status != 200:
            return None
        return {"answered": len(json.loads(data)["entitlements"]) if mode == "batch" else 1}

    load = run_load(
        port,
        [
            Client(build=lambda c=c: _requests(c, mode, token, list(numbers)), cycle=True)
            for c in range(clients)
        ],
        tally,
        warmup_s=params["warmup_s"],
        duration_s=params["duration_s"],
    )
    seconds = params["duration_s"]
    return {
        "clients": clients,
        "lookups_per_s": round(load["counts"].get("answered", 0) / seconds),
        "requests_per_s": round(load["requests_measured"] / seconds, 1),
        "request_errors": load["errors"],
        "error_samples": load["error_samples"],
        "latency_ms": latency_ms(load["latencies"], digits=2),
        "cpu_cores_by_command": load["cpu_cores_by_command"],
    }


def _in_process(numbers, entitlements_get) -> dict:
    """The cache path alone (no HTTP, no token check, no throttle): one
    member per call, then 1,000 per call, in this process."""
    import random as _random

    rng = _random.Random(1)
    singles = []
    for number in rng.sample(numbers, min(5000, len(numbers))):
        started = time.perf_counter()
        entitlements_get([number])
        singles.append(time.perf_counter() - started)
    batches, answered = [], 0
    for _ in range(20):
        chunk = rng.sample(numbers, min(BATCH, len(numbers)))
        started = time.perf_counter()
        answered += len(entitlements_get(chunk))
        batches.append(time.perf_counter() - started)
    return {
        "single_ms": {
            "p50": round(percentile(singles, 50) * 1000, 3),
            "p99": round(percentile(singles, 99) * 1000, 3),
        },
        "single_lookups_per_s": round(len(singles) / sum(singles)),
        "batch_of_1000_ms_p50": round(percentile(batches, 50) * 1000, 2),
        "batch_lookups_per_s": round(answered / sum(batches)),
    }


def run(ctx: Context, params: dict, members) -> dict:
    import os

    from django.core.cache import cache
    from django.db import connections
    from django.utils import timezone

    from compensation.store import Beat, get_store
    from integrations.entitlements import entitlements_for_node

    from .data import ensure_nodes

    os.environ["ENTITLEMENT_THROTTLE_RATE"] = "100000000/minute"
    now = timezone.now()
    ((node, token),) = ensure_nodes("bench-entitlements", 1, now=now)
    numbers = [m.member_no for m in members[: params["members"]]]
    # A node reads only its own members: every member reports on it once.
    for start in range(0, len(numbers), BATCH):
        beats = [
            Beat(key=f"{n}|bench", at=now, ended=False) for n in numbers[start : start + BATCH]
        ]
        get_store().apply(node.pk, beats, threshold_s=300, arrival=now)

    def entitlements_get(chunk):
        return entitlements_for_node(node_id=node.pk, member_nos=chunk, now=timezone.now())

    cache.delete_many([f"ent:1:{n}" for n in numbers])
    started = time.perf_counter()
    for start in range(0, len(numbers), BATCH):
        entitlements_get(numbers[start : start + BATCH])
    warm_s = time.perf_counter() - started
    log(f"entitlements: cache warmed for {len(numbers):,} members in {warm_s:.1f} s")
    in_process = _in_process(numbers, entitlements_get)

    port = free_port()
    log_path = ctx.workdir / "gunicorn-entitlements.log"
    server = start_process(
        [
            str(BIN / "gunicorn"),
            "kamen_portal.wsgi",
            "-w",
            str(params["gunicorn_workers"]),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        log_path,
    )
    try:
        probe = (
            "GET",
            f"/api/v1/entitlements/{numbers[0]}/",
            None,
            {"Authorization": f"Bearer {token}"},
        )
        wait_until_serving(port, server, probe, timeout=180)
        connections.close_all()
        log("entitlements: batch phase")
        batch = _phase("batch", params["batch_clients"], token, port, numbers, params)
        log("entitlements: single phase")
        single = _phase("single", params["single_clients"], token, port, numbers, params)
    finally:
        stop_process(server)
    if batch["request_errors"] or single["request_errors"]:
        log("gunicorn log:\n" + tail(log_path))
    workers = params["gunicorn_workers"]
    return {
        # Another worker count keeps its own file.
        "result_name": "entitlements" if workers == 2 else f"entitlements-w{workers}",
        "parameters": params,
        "results": {
            "cache_warm_s": round(warm_s, 2),
            "in_process_from_cache": in_process,
            "batch_of_1000": batch,
            "single": single,
        },
        "targets": [
            target(
                "lookups_per_s (batch of 1,000, from cache)",
                batch["lookups_per_s"],
                at_least=TARGET_LOOKUPS_PER_S,
            ),
            target(
                "p99_ms (single look-up over HTTP, from cache)",
                single["latency_ms"]["p99"],
                below=TARGET_P99_MS,
            ),
            target(
                "p99_ms (single look-up in-process, from the Redis cache)",
                in_process["single_ms"]["p99"],
                below=TARGET_P99_MS,
            ),
        ],
    }


def summary(result: dict) -> str:
    b, s = result["results"]["batch_of_1000"], result["results"]["single"]
    p = result["results"]["in_process_from_cache"]
    return (
        f"entitlements in-process from cache: single p99 {p['single_ms']['p99']} ms, "
        f"{p['batch_lookups_per_s']:,} look-ups/s in batches; over HTTP: "
        f"entitlements: batch {b['lookups_per_s']:,} look-ups/s (p99 {b['latency_ms']['p99']} ms "
        f"per 1,000), single {s['lookups_per_s']:,} look-ups/s, p50 {s['latency_ms']['p50']} ms, "
        f"p99 {s['latency_ms']['p99']} ms"
    )
