"""``python -m benchmarks.chaos [--quick] [--seed N] [--base-port P]``

Starts its own PostgreSQL, Redis (AOF), SMTP sink, gunicorn, two Celery
workers and beat on loopback ports P..P+3 (default 28100: below Linux's
ephemeral range, so no outgoing connection can sit on the port of a server
that is restarted; from 58100 the SMTP sink once waited a minute for its
port), runs the plan of
``plan.make_plan`` with faults at random moments, waits for the portal to
settle, checks everything against the model and writes
benchmarks/results/chaos[.quick].json. Exit status 1 on any discrepancy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .. import harness
from ..harness import Context, Services, configure_environment, log, migrate
from .plan import DROP_NODE, FAULT_KINDS, ROUND_EVENT_S, expected, make_plan
from .procs import Stack


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="the CI version: ≥1 fault of each kind"
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", "13")))
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("CHAOS_PORT", "28100")))
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR)
    return parser.parse_args(argv)


def _seed(plan, now):
    from django.contrib.auth import get_user_model

    from members.models import MemberProfile

    from ..data import ensure_members, ensure_nodes

    nodes = ensure_nodes("chaos", DROP_NODE + 1, now=now)
    bench = ensure_members(len(nodes) * plan.members_per_node, now=now)
    pks = [m.pk for m in bench]
    MemberProfile.objects.filter(pk__in=pks).update(language="en")
    by_pk = {m.pk: m for m in MemberProfile.objects.filter(pk__in=pks).select_related("user")}
    members = [by_pk[pk] for pk in pks]
    staff = get_user_model().objects.create_superuser(
        email="supervisor@chaos.invalid", password=os.urandom(12).hex()
    )
    return nodes, members, staff


def _raise_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # every `finally` runs: all servers stopped


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    plan = make_plan(quick=args.quick, seed=args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="kamen-chaos-"))
    os.chmod(workdir, 0o755)
    stack = Stack(workdir, args.base_port)
    started = time.monotonic()
    ok = False
    try:
        stack.start_data()
        configure_environment(Services(stack.pg.url, stack.redis_url, own=True))
        os.environ.update(stack.environment())
        migrate()
        import django

        django.setup()
        from django.utils import timezone

        from compensation.store import get_store

        from .check import discrepancies
        from .traffic import Appeals, Faults, LoadGenerator, Shared, Supervisor

        nodes, members, staff = _seed(plan, timezone.now())
        initial = [m.expires_at for m in members]
        from django.db import connections

        connections.close_all()
        stack.pg.durable()
        numbers = [
            [members[n * plan.members_per_node + i].member_no for i in range(plan.members_per_node)]
            for n in range(len(nodes))
        ]
        stack.start_app()
        model = expected(plan)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        shared = Shared(
            t0=time.monotonic() + 2.0,
            e0=now - timedelta(seconds=(plan.rounds + 30) * ROUND_EVENT_S),
        )
        drop_members = members[DROP_NODE * plan.members_per_node :]
        threads = [
            LoadGenerator(plan, shared, stack.web_port, nodes, numbers),
            Faults(plan, shared, stack, nodes[0][1]),
            Appeals(plan, shared, drop_members, nodes[DROP_NODE][0], staff),
        ]
        log(
            f"chaos: {len(members)} members on {len(nodes)} nodes, {plan.rounds} rounds, "
            f"{sum(len(v) for v in plan.outages.values())} outages, {len(plan.drops)} drops, "
            f"{len(plan.appeals)} appeals, {len(plan.faults)} faults"
        )
        supervisor = Supervisor(shared, stack)
        supervisor.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        traffic_s = time.monotonic() - shared.t0
        faults = threads[1]
        # Settle: sweepers re-enqueue what a crash dropped (2 minutes), e-mail
        # retries back off; check until the model holds or time is up.
        settle_from = time.monotonic()
        problems, figures = [], {}
        final = False
        while True:
            from django.db import close_old_connections

            close_old_connections()
            # verify_ledger (a subprocess, seconds) only once the rest holds.
            final = final or time.monotonic() - settle_from > plan.settle_s
            problems, figures = discrepancies(
                verify=final,
                plan=plan,
                model=model,
                e0=shared.e0,
                members=members,
                nodes=nodes,
                initial=initial,
                sink_file=stack.sink_file,
                store=get_store(),
            )
            problems = shared.problems + problems
            if final:
                break
            if not problems:
                final = True
                continue
            log(f"chaos: settling, {len(problems)} open ({problems[0][:160]})")
            time.sleep(10)
        settle_s = time.monotonic() - settle_from
        shared.stop.set()
        for line in problems[:40]:
            log(f"chaos: DISCREPANCY {line}")
        missing = [k for k in FAULT_KINDS if faults.done.get(k, 0) < plan.faults_per_kind]
        if missing:
            problems.append(f"faults not injected as planned: {missing}")
        short = [s for s in faults.smtp_outages if s < plan.smtp_down_s - 0.5]
        if len(faults.smtp_outages) < plan.faults_per_kind or short:
            problems.append(f"SMTP outages not a minute each: {faults.smtp_outages}")
        result = {
            "parameters": {
                "quick": args.quick,
                "seed": args.seed,
                "rounds": plan.rounds,
                "round_wall_s": 3.0,
                "event_seconds_per_round": ROUND_EVENT_S,
                "smtp_down_s": plan.smtp_down_s,
                "workers": {
                    "fast": "detection,celery,notifications (solo)",
                    "bulk": "payouts,exports (prefork 2)",
                },
            },
            "results": {
                "members": len(members),
                "nodes": len(nodes),
                "node_outages": sum(len(v) for v in plan.outages.values()),
                "individual_drops": len(plan.drops),
                "appeal_decisions": len(plan.appeals),
                "faults_injected": faults.done,
                "faults_detail": {
                    "worker_kills_holding_a_payout_message": faults.notes["mid_payout"],
                    "web_worker_kills_that_cut_a_request": faults.notes["mid_request"],
                    "smtp_outage_seconds": faults.smtp_outages,
                },
                # Application processes that exited on their own and were
                # started again, as systemd would (see README).
                "supervisor_restarts": dict(stack.restarts),
                "heartbeats_accepted": shared.accepted,
                "requests_failed_and_resent": shared.request_errors,
                **figures,
                "discrepancies": len(problems),
                "discrepancy_samples": problems[:20],
                "traffic_s": round(traffic_s, 1),
                "settle_s": round(settle_s, 1),
                "total_s": round(time.monotonic() - started, 1),
            },
            "targets": [harness.target("discrepancies", len(problems), below=1)],
        }
        ctx = Context(
            Services(stack.pg.url, stack.redis_url, own=True), args.quick, workdir, args.out
        )
        path = harness.write_result(ctx, "chaos", result)
        log(
            f"chaos: faults {faults.done}, {len(members)} members, "
            f"discrepancies {len(problems)}; wrote {path}"
        )
        ok = not problems
        return 0 if ok else 1
    finally:
        stack.stop_all()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"chaos: logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
