"""Entry point: ``python -m benchmarks [ingest] [detection] [payout] [--quick]``.

Uses DATABASE_URL and REDIS_URL when both are set (they must be throwaway
services: the benchmarks write 100,000 members, ledger entries, and reset the
heartbeat store and the Celery queue); otherwise starts its own pair with
scripts/services.sh and always stops it at the end. Migrates, seeds the
members once, runs the chosen benchmarks, writes one JSON per benchmark to
benchmarks/results/ and prints a summary. Exit status 1 if a benchmark failed
to run (a missed target is reported, not an error).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import harness
from .harness import Context, configure_environment, log, migrate, services

BENCHMARKS = (
    "ingest",
    "detection",
    "payout",
    "appeals",
    "notify",
    "queues",
    "assistant",
    "health",
    "entitlements",
    "webhooks",
    "tlog",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the Kamen portal benchmarks and write benchmarks/results/<name>.json.",
    )
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"which to run, any of {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run; results go to <name>.quick.json",
    )
    parser.add_argument(
        "--out", type=Path, default=harness.RESULTS_DIR, help="directory for the JSON results"
    )
    sizes = parser.add_argument_group("sizes (defaults: full size, or small with --quick)")
    sizes.add_argument("--members", type=int, help="members (ingest sessions, payout members)")
    sizes.add_argument("--sessions", type=int, help="detection: live sessions in the store")
    sizes.add_argument(
        "--changed",
        type=float,
        nargs="+",
        help="detection: shares of changed sessions to measure, e.g. 0 0.001 0.01 0.05",
    )
    sizes.add_argument("--repeats", type=int, help="detection: passes measured per share")
    sizes.add_argument("--nodes", type=int, help="nodes the sessions are spread over")
    sizes.add_argument("--duration", type=float, help="ingest: measured seconds")
    sizes.add_argument("--warmup", type=float, help="ingest: warm-up seconds before measuring")
    sizes.add_argument("--clients", type=int, help="ingest: load-generator processes")
    sizes.add_argument(
        "--web-workers",
        type=int,
        help="ingest, entitlements: gunicorn sync workers (default 2; another "
        "number writes <name>-w<N>.json)",
    )
    sizes.add_argument(
        "--pool",
        choices=["prefork", "solo"],
        default="prefork",
        help="payout: Celery worker pool (default prefork)",
    )
    sizes.add_argument(
        "--concurrency", type=int, default=2, help="payout: prefork processes (default 2)"
    )
    parser.add_argument(
        "--min-rate",
        type=float,
        metavar="R",
        help="payout: exit non-zero when fewer than R members/s were paid (a CI gate)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.benchmarks) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    args.benchmarks = list(dict.fromkeys(args.benchmarks)) or list(BENCHMARKS)
    return args


def _raise_on_sigterm(signum, frame):
    # Turn TERM into an exception so every `finally` runs: servers we started
    # are stopped and throwaway services removed.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="kamen-bench-run-"))
    failures: list[str] = []
    summaries: list[str] = []
    gates: list[str] = []
    try:
        with services() as svc:
            configure_environment(svc)
            migrate()
            import django

            django.setup()
            summaries, failures, gates = _run_all(args, Context(svc, args.quick, workdir, args.out))
    finally:
        if failures:
            log(f"server logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("== benchmark summary" + (" (quick)" if args.quick else ""))
    for line in summaries:
        print(line)
    for name in failures:
        print(f"{name}: FAILED (see the traceback above)")
    for missed in gates:
        print(f"GATE MISSED: {missed}")
    return 1 if failures or gates else 0


def _run_all(args, ctx: Context) -> tuple[list[str], list[str], list[str]]:
    from django.utils import timezone

    from . import (
        appeals,
        assistant,
        detection,
        entitlements,
        health,
        ingest,
        notify,
        payout,
        queues,
        tlog,
        webhooks,
    )
    from .data import ensure_members

    modules = {
        "ingest": ingest,
        "detection": detection,
        "payout": payout,
        "appeals": appeals,
        "notify": notify,
        "queues": queues,
        "assistant": assistant,
        "health": health,
        "entitlements": entitlements,
        "webhooks": webhooks,
        "tlog": tlog,
    }
    params = {name: modules[name].params_for(args) for name in args.benchmarks}
    needed = max(p.get("members", 0) or p.get("sessions", 0) for p in params.values())
    members = ensure_members(needed, now=timezone.now())

    summaries, failures, gates = [], [], []
    for name in args.benchmarks:
        log(f"== {name}: {params[name]}")
        started = time.monotonic()
        # Others' work on the machine shows here (and in cpu_cores_by_command).
        load_before = harness.load_average()
        harness.purge_task_queue()
        try:
            result = modules[name].run(ctx, params[name], members)
        except Exception:
            traceback.print_exc()
            failures.append(name)
            continue
        finally:
            harness.purge_task_queue()
        result["benchmark_wall_s"] = round(time.monotonic() - started, 1)
        result["load_average_before"] = load_before
        # A variant (e.g. the payout on a solo worker) keeps its own file.
        path = harness.write_result(ctx, result.pop("result_name", name), result)
        line = modules[name].summary(result)
        for t in result["targets"]:
            line += f"\n    target {t['metric']} {t['target']}: {t['value']} -> "
            line += "met" if t["met"] else "MISSED"
        # A gate (e.g. payout --min-rate) fails the run, unlike a target.
        gate = getattr(modules[name], "gate", None)
        missed = gate(result, params[name]) if gate else None
        if missed:
            gates.append(missed)
            line += f"\n    GATE MISSED: {missed}"
        summaries.append(line)
        log(line)
        log(
            f"wrote {path.relative_to(harness.ROOT) if path.is_relative_to(harness.ROOT) else path}"
        )
    return summaries, failures, gates


if __name__ == "__main__":
    sys.exit(main())
