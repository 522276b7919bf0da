"""Ingest: heartbeats per second through real HTTP.

gunicorn with 2 sync workers serves the real WSGI application (PostgreSQL for
node auth and member checks, Redis for the throttle and the heartbeat store);
a few load-generator processes POST batches of 500 heartbeats to
/api/v1/heartbeats/ on loopback.

The load generator shares the machine's 2 cores with everything it measures,
so it does as little as it can: every request body is serialized to bytes
before the clock starts, each client is one process with one plain
``http.client`` connection (gunicorn's sync workers answer ``Connection:
close``, so it reconnects per request; on loopback that costs little), and it
only parses the small JSON answer. Each client sends for its own nodes only,
so a node's batches arrive in event-time order, as from a real node.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta

from .harness import (
    BIN,
    Context,
    cpu_by_command,
    cpu_snapshot,
    free_port,
    log,
    percentile,
    start_process,
    stop_process,
    tail,
    target,
)

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
        "gunicorn_workers": 2,
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
    requests: list[tuple[dict, bytes]] = []
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
                requests.append((headers, json.dumps({"heartbeats": items}).encode()))
                if len(requests) >= limit:
                    return requests
    return requests


def _client(index, nodes, port, batch, limit, base, ready, go, clock, results) -> None:
    """One load-generating process: build its bodies, wait for the start,
    send until the end time or its bodies run out, report what it saw."""
    requests = _bodies(nodes, batch=batch, limit=limit, base=base)
    ready.put(index)
    if not go.wait(timeout=120):
        results.put({"index": index, "error": "never started"})
        return
    measure_from, stop_at = clock[0], clock[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    accepted = rejected = sent = errors = 0
    error_samples: list[str] = []
    exhausted = True
    for headers, body in requests:
        if time.monotonic() >= stop_at:
            exhausted = False
            break
        started = time.monotonic()
        try:
            conn.request("POST", PATH, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # reconnects on the next request
            status, data = 0, repr(exc).encode()
        finished = time.monotonic()
        sent += 1
        if not (measure_from <= finished <= stop_at):
            continue  # warm-up, or completed after the end: not counted
        latencies.append(finished - started)
        if status == 202:
            answer = json.loads(data)
            accepted += answer["accepted"]
            rejected += len(answer["rejected"])
        else:
            errors += 1
            if len(error_samples) < 3:
                error_samples.append(f"{status}: {data[:200]!r}")
    conn.close()
    results.put(
        {
            "index": index,
            "sent": sent,
            "latencies": latencies,
            "accepted": accepted,
            "rejected": rejected,
            "errors": errors,
            "error_samples": error_samples,
            "ran_out_of_bodies": exhausted,
        }
    )


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


# --- server ----------------------------------------------------------------------------


def _wait_until_serving(port: int, token: str, proc, timeout: float = 60.0) -> None:
    """An empty batch answers 202 once a worker has loaded the application."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(
                "POST",
                PATH,
                body=b'{"heartbeats": []}',
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            if response.status == 202:
                return
            raise RuntimeError(f"gunicorn answered {response.status} to an empty batch")
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            time.sleep(0.2)
        finally:
            conn.close()
    raise RuntimeError("gunicorn did not start serving in time")


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
    procs = []
    try:
        _wait_until_serving(port, nodes[0][1], server)
        # Forked children must not share this process's database sockets.
        connections.close_all()
        mp = multiprocessing.get_context("fork")
        ready, results, go = mp.Queue(), mp.Queue(), mp.Event()
        clock = mp.Array("d", 2)
        base = datetime.now(UTC) - timedelta(minutes=30)
        for c, plan in enumerate(plans):
            proc = mp.Process(
                target=_client,
                args=(
                    c,
                    plan,
                    port,
                    params["batch_size"],
                    params["max_requests_per_client"],
                    base,
                    ready,
                    go,
                    clock,
                    results,
                ),
                daemon=True,
            )
            proc.start()
            procs.append(proc)
        for _ in procs:
            ready.get(timeout=300)
        log(
            f"ingest: {len(procs)} clients ready; warm-up {params['warmup_s']} s, "
            f"measuring {params['duration_s']} s"
        )
        measure_from = time.monotonic() + params["warmup_s"]
        stop_at = measure_from + params["duration_s"]
        clock[0], clock[1] = measure_from, stop_at
        go.set()
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before, cpu_t0 = cpu_snapshot(), time.monotonic()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu = cpu_by_command(
            cpu_before,
            cpu_snapshot(),
            time.monotonic() - cpu_t0,
            labels={proc.pid: "load generator" for proc in procs},
        )
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        stop_process(server)

    zadd_after = zadd_rate(
        ctx.services.redis_url, numbers, batch=params["batch_size"], seconds=ZADD_SECONDS
    )
    log(f"ingest: redis-py pipelined ZADD after the run: {zadd_after:,.0f}/s")
    failed = [o for o in outcomes if "error" in o]
    if failed:
        raise RuntimeError(f"load generator failed: {failed}")
    latencies = [x for o in outcomes for x in o["latencies"]]
    accepted = sum(o["accepted"] for o in outcomes)
    errors = sum(o["errors"] for o in outcomes)
    seconds = params["duration_s"]
    live = sum(store.live_count(node.pk) for node, _token in nodes)
    store.reset()
    if errors:
        log("ingest: errors: " + "; ".join(s for o in outcomes for s in o["error_samples"]))
        log("gunicorn log:\n" + tail(log_path))

    def ms(value):
        return round(value * 1000, 1) if value is not None else None

    heartbeats_per_s = round(accepted / seconds)
    zadd_per_s = round(max(zadd_before, zadd_after))
    ratio = round(heartbeats_per_s / zadd_per_s, 3) if zadd_per_s else None
    p99_ms = ms(percentile(latencies, 99))

    return {
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
            "items_rejected": sum(o["rejected"] for o in outcomes),
            "request_errors": errors,
            "error_samples": [s for o in outcomes for s in o["error_samples"]][:3],
            "latency_ms": {
                "p50": ms(percentile(latencies, 50)),
                "p90": ms(percentile(latencies, 90)),
                "p99": p99_ms,
                "max": ms(max(latencies) if latencies else None),
            },
            "clients_ran_out_of_bodies": sum(1 for o in outcomes if o["ran_out_of_bodies"]),
            "live_sessions_in_store_after": live,
            "cpu_cores_by_command": cpu,
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
