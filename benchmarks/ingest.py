"""Ingest: heartbeats per second through real HTTP.

gunicorn with 2 sync workers serves the real WSGI application (PostgreSQL for
node auth and member checks, Redis for the throttle and the heartbeat store);
a few load-generator processes POST batches of 500 heartbeats to
/api/v1/heartbeats/ on loopback.

The load generator is benchmarks/http_load.py's. Each client sends for its
own nodes only, so a node's batches arrive in event-time order, as from a
real node.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta

from .harness import BIN, Context, free_port, log, start_process, stop_process, tail, target
from .http_load import Client, Request, latency_ms, run_load, wait_until_serving

PATH = "/api/v1/heartbeats/"
TARGET_HEARTBEATS_PER_S = 20_000
# Against what one redis-py process can pipeline on the same cores in the
# same run (the cost floor of putting a beat into Redis at all).
TARGET_RATIO_TO_ZADD = 0.5
TARGET_P99_MS = 100.0
ZADD_SECONDS = 5.0


def params_for(args) -> dict:
    quick = args.quick
    return {
        "members": args.members or (10_000 if quick else 100_000),
        "nodes": args.nodes or 8,
        "batch_size": 500,
        "clients": args.clients or 4,
        "gunicorn_workers": args.web_workers or 2,
        "warmup_s": args.warmup if args.warmup is not None else (1.0 if quick else 3.0),
        "duration_s": args.duration or (5.0 if quick else 20.0),
        # A bound on requests per client, whatever the speed: 60 MB of bodies.
        "max_requests_per_client": 1200,
    }


# --- load generator (runs in forked child processes) ---------------------------------


def _bodies(nodes: list[tuple[str, list[str]]], *, batch: int, limit: int, base: datetime):
    """Pre-serialized requests for ``nodes`` ([(token, member numbers)]):
    round after round, every session of every node beats once, in batches.

    Rounds are spaced so that all of them stay between ``base`` and
    ``base`` + 25 minutes, i.e. in the past when sent (the API refuses beats
    more than 2 minutes in the future) and far apart enough in event time
    that nothing looks like a gap."""
    per_round = sum((len(members) + batch - 1) // batch for _token, members in nodes)
    rounds = max(1, (limit + per_round - 1) // per_round)
    step = min(timedelta(seconds=30), timedelta(minutes=25) / rounds)
    requests: list[Request] = []
    for r in range(rounds):
        at = base + r * step
        for token, members in nodes:
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            }
            for start in range(0, len(members), batch):
                items = [
                    {
                        "member": no,
                        "session": f"s-{no}",
                        # A node sees its sessions' beats over a second or so.
                        "at": (at + timedelta(milliseconds=2 * i)).isoformat(),
                        "state": "alive",
                    }
                    for i, no in enumerate(members[start : start + batch])
                ]
                body = json.dumps({"heartbeats": items}).encode()
                requests.append(("POST", PATH, body, headers))
                if len(requests) >= limit:
                    return requests
    return requests


def _tally(status: int, data: bytes) -> dict[str, int] | None:
    if status != 202:
        return None
    answer = json.loads(data)
    return {"accepted": answer["accepted"], "rejected": len(answer["rejected"])}


# --- the baseline: one redis-py process, pipelined ZADD --------------------------------


def _zadd_client(redis_url, numbers, batch, seconds, results) -> None:
    """One ZADD per heartbeat (the member's session, scored by time), ``batch``
    per pipelined round trip, for ``seconds``: the rate is heartbeats/s."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = [f"bench:zadd:n{i}" for i in range(8)]
    members = [f"{no}|s-{no}" for no in numbers]
    done = 0
    score = 1_700_000_000_000_000
    started = time.monotonic()
    stop_at = started + seconds
    while time.monotonic() < stop_at:
        for start in range(0, len(members), batch):
            pipe = client.pipeline(transaction=False)
            key = keys[(start // batch) % len(keys)]
            for member in members[start : start + batch]:
                score += 1
                pipe.zadd(key, {member: score})
            pipe.execute()
            done += len(members[start : start + batch])
            if time.monotonic() >= stop_at:
                break
    elapsed = time.monotonic() - started
    client.delete(*keys)
    client.close()
    results.put(done / elapsed)


def zadd_rate(redis_url: str, numbers: list[str], *, batch: int, seconds: float) -> float:
    mp = multiprocessing.get_context("fork")
    results = mp.Queue()
    proc = mp.Process(
        target=_zadd_client, args=(redis_url, numbers, batch, seconds, results), daemon=True
    )
    proc.start()
    rate = results.get(timeout=seconds + 120)
    proc.join(timeout=10)
    return rate


# --- benchmark -------------------------------------------------------------------------------


def run(ctx: Context, params: dict, members) -> dict:
    from django.db import connections
    from django.utils import timezone

    from compensation.store import get_store

    from .data import ensure_nodes

    now = timezone.now()
    nodes = ensure_nodes("bench-ingest", params["nodes"], now=now)
    store = get_store()
    store.reset()

    # Sessions are spread over the nodes; each client owns whole nodes.
    numbers = [m.member_no for m in members[: params["members"]]]
    per_node = [(token, numbers[i :: params["nodes"]]) for i, (_node, token) in enumerate(nodes)]
    clients = min(params["clients"], params["nodes"])
    plans = [per_node[c::clients] for c in range(clients)]

    # The baseline before and after the HTTP run (other load on the machine
    # moves both); the ratio is taken against the higher of the two.
    connections.close_all()
    zadd_before = zadd_rate(
        ctx.services.redis_url, numbers, batch=params["batch_size"], seconds=ZADD_SECONDS
    )
    log(f"ingest: redis-py pipelined ZADD, one process: {zadd_before:,.0f}/s")

    port = free_port()
    log_path = ctx.workdir / "gunicorn.log"
    log(f"ingest: gunicorn -w {params['gunicorn_workers']} on 127.0.0.1:{port}")
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
        headers = {"Authorization": f"Bearer {nodes[0][1]}", "Content-Type": "application/json"}
        # An empty batch answers 202 once a worker has loaded the application.
        wait_until_serving(port, server, ("POST", PATH, b'{"heartbeats": []}', headers), expect=202)
        # Forked children must not share this process's database sockets.
        connections.close_all()
        base = datetime.now(UTC) - timedelta(minutes=30)
        batch, limit = params["batch_size"], params["max_requests_per_client"]
        log(
            f"ingest: {len(plans)} clients; warm-up {params['warmup_s']} s, "
            f"measuring {params['duration_s']} s"
        )
        load = run_load(
            port,
            [
                Client(build=lambda plan=plan: _bodies(plan, batch=batch, limit=limit, base=base))
                for plan in plans
            ],
            _tally,
            warmup_s=params["warmup_s"],
            duration_s=params["duration_s"],
        )
    finally:
        stop_process(server)

    zadd_after = zadd_rate(
        ctx.services.redis_url, numbers, batch=params["batch_size"], seconds=ZADD_SECONDS
    )
    log(f"ingest: redis-py pipelined ZADD after the run: {zadd_after:,.0f}/s")
    latencies = load["latencies"]
    accepted = load["counts"].get("accepted", 0)
    errors = load["errors"]
    seconds = params["duration_s"]
    live = sum(store.live_count(node.pk) for node, _token in nodes)
    store.reset()
    if errors:
        log("ingest: errors: " + "; ".join(load["error_samples"]))
        log("gunicorn log:\n" + tail(log_path))

    heartbeats_per_s = round(accepted / seconds)
    zadd_per_s = round(max(zadd_before, zadd_after))
    ratio = round(heartbeats_per_s / zadd_per_s, 3) if zadd_per_s else None
    latency = latency_ms(latencies)
    p99_ms = latency["p99"]

    workers = params["gunicorn_workers"]
    return {
        # Another worker count keeps its own file.
        "result_name": "ingest" if workers == 2 else f"ingest-w{workers}",
        "parameters": params,
        "results": {
            "heartbeats_per_s": heartbeats_per_s,
            "redis_zadd_pipelined_per_s": {
                "before": round(zadd_before),
                "after": round(zadd_after),
                "used": zadd_per_s,
            },
            "ratio_to_zadd": ratio,
            "requests_per_s": round(len(latencies) / seconds, 1),
            "requests_measured": len(latencies),
            "heartbeats_accepted": accepted,
            "items_rejected": load["counts"].get("rejected", 0),
            "request_errors": errors,
            "error_samples": load["error_samples"],
            "latency_ms": latency,
            "clients_ran_out_of_bodies": load["clients_ran_out"],
            "live_sessions_in_store_after": live,
            "cpu_cores_by_command": load["cpu_cores_by_command"],
        },
        "targets": [
            target("heartbeats_per_s", heartbeats_per_s, at_least=TARGET_HEARTBEATS_PER_S),
            target("ratio to one-process pipelined ZADD", ratio, at_least=TARGET_RATIO_TO_ZADD),
            target("p99 latency ms at batch 500", p99_ms, below=TARGET_P99_MS),
        ],
    }


def summary(result: dict) -> str:
    r = result["results"]
    lat = r["latency_ms"]
    return (
        f"ingest: {r['heartbeats_per_s']:,} heartbeats/s ({r['requests_per_s']} requests/s of "
        f"{result['parameters']['batch_size']}), latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
        f"errors {r['request_errors']}; {r['ratio_to_zadd']} × one-process pipelined ZADD "
        f"({r['redis_zadd_pipelined_per_s']['used']:,}/s)"
    )
