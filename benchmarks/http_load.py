"""The HTTP load generator the server benchmarks share (ingest, entitlements).

The load generator shares the machine's 2 cores with everything it measures,
so it does as little as it can: every request is built before the clock
starts, each client is one forked process with one plain ``http.client``
connection (it reconnects after a ``Connection: close``; on loopback that
costs little), and it parses only the small answers it must count. All
clients start together after a warm-up; only requests that finish inside the
measured window count.
"""

from __future__ import annotations

import http.client
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .measure import cpu_by_command, cpu_snapshot, percentile

# (method, path, body or None, headers)
Request = tuple[str, str, bytes | None, dict[str, str]]
# What an answer adds to the client's counts; None marks it an error.
Tally = Callable[[int, bytes], dict[str, int] | None]


@dataclass
class Client:
    build: Callable[[], list[Request]]  # runs in the client, before the start
    cycle: bool = False  # send the requests round and round until the end


def wait_until_serving(
    port: int, proc, request: Request, *, expect: int = 200, timeout: float = 60.0
) -> None:
    """Until ``request`` answers ``expect`` (a worker has loaded the
    application); any other answer is an error at once."""
    method, path, body, headers = request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(10.0, timeout / 2))
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == expect:
                return
            raise RuntimeError(f"the server answered {response.status} to {method} {path}")
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            time.sleep(0.2)
        finally:
            conn.close()
    raise RuntimeError("the server did not start serving in time")


def _client(index, spec: Client, port, tally: Tally, ready, go, clock, results) -> None:
    requests = spec.build()
    ready.put(index)
    if not go.wait(timeout=120):
        results.put({"index": index, "error": "never started"})
        return
    measure_from, stop_at = clock[0], clock[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    sent = errors = i = 0
    samples: list[str] = []
    ran_out = False
    while time.monotonic() < stop_at:
        if i >= len(requests):
            if not spec.cycle or not requests:
                ran_out = True
                break
            i = 0
        method, path, body, headers = requests[i]
        i += 1
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers)
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
        added = tally(status, data)
        if added is None:
            errors += 1
            if len(samples) < 3:
                samples.append(f"{status}: {data[:200]!r}")
        else:
            counts.update(added)
    conn.close()
    results.put(
        {
            "index": index,
            "sent": sent,
            "latencies": latencies,
            "counts": dict(counts),
            "errors": errors,
            "error_samples": samples,
            "ran_out": ran_out,
        }
    )


def run_load(
    port: int, clients: list[Client], tally: Tally, *, warmup_s: float, duration_s: float
) -> dict:
    """Fork the clients, let them build their requests, start them together,
    and measure ``duration_s`` after ``warmup_s``. Returns the merged counts,
    latencies and CPU by command over the measured window."""
    mp = multiprocessing.get_context("fork")
    ready, results, go = mp.Queue(), mp.Queue(), mp.Event()
    clock = mp.Array("d", 2)
    procs = [
        mp.Process(
            target=_client, args=(c, spec, port, tally, ready, go, clock, results), daemon=True
        )
        for c, spec in enumerate(clients)
    ]
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.get(timeout=300)
        measure_from = time.monotonic() + warmup_s
        stop_at = measure_from + duration_s
        clock[0], clock[1] = measure_from, stop_at
        go.set()
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before, t0 = cpu_snapshot(), time.monotonic()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu = cpu_by_command(
            cpu_before,
            cpu_snapshot(),
            time.monotonic() - t0,
            labels={proc.pid: "load generator" for proc in procs},
        )
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    failed = [o for o in outcomes if "error" in o]
    if failed:
        raise RuntimeError(f"load generator failed: {failed}")
    latencies = [x for o in outcomes for x in o["latencies"]]
    counts: Counter[str] = Counter()
    for o in outcomes:
        counts.update(o["counts"])
    return {
        "latencies": latencies,
        "counts": dict(counts),
        "requests_measured": len(latencies),
        "errors": sum(o["errors"] for o in outcomes),
        "error_samples": [s for o in outcomes for s in o["error_samples"]][:3],
        "clients_ran_out": sum(1 for o in outcomes if o["ran_out"]),
        "cpu_cores_by_command": cpu,
    }


def latency_ms(latencies: list[float], digits: int = 1) -> dict:
    def ms(value):
        return round(value * 1000, digits) if value is not None else None

    return {
        "p50": ms(percentile(latencies, 50)),
        "p90": ms(percentile(latencies, 90)),
        "p99": ms(percentile(latencies, 99)),
        "max": ms(max(latencies) if latencies else None),
    }
