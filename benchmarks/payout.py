"""Incident payout: members paid per second by a real Celery worker.

Staff declare a platform-wide outage that already ended
(``incident_declare(kind="outage", scope="all", ...)``): it closes at once and
enqueues ``pay_incident`` on commit. A real worker (a separate
``celery worker`` process on the same PostgreSQL and Redis) plans the payout
and pays it in chunks. The clock runs from the declaration to the moment the
incident's payout is done; meanwhile the worker's process tree (main process
and pool children) is sampled for resident memory.

Afterwards every affected member must have exactly one ledger entry for the
incident and a membership exactly the outage's length longer.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from .harness import (
    Context,
    TreeMemorySampler,
    cpu_by_command,
    cpu_snapshot,
    log,
    queued_tasks,
    start_celery_worker,
    stop_process,
    tail,
    target,
)

TARGET_MEMBERS_PER_S = 2_000
TARGET_PEAK_MB = 300
OUTAGE = timedelta(minutes=30)
TIMEOUT_S = 1200


def params_for(args) -> dict:
    return {
        "members": args.members or (5_000 if args.quick else 100_000),
        "pool": args.pool,
        "concurrency": args.concurrency if args.pool == "prefork" else 1,
        "outage_minutes": int(OUTAGE.total_seconds() // 60),
        "timeout_s": TIMEOUT_S,
        "min_rate": args.min_rate,
    }


def gate(result: dict, params: dict) -> str | None:
    """``--min-rate R``: the reason the run fails CI, or None."""
    rate, floor = result["results"]["members_per_s"], params.get("min_rate")
    if floor is not None and rate < floor:
        return f"payout: {rate:,} members/s is below --min-rate {floor:g}"
    return None


def _outage_window(now):
    """A 30-minute window in the past that no earlier run covered.

    Each lost minute is paid once: a window overlapping an earlier run's
    would pay only the uncovered rest, and the benchmark would measure
    "already covered" decisions instead of payouts. So each run's outage
    lies before everything covered so far."""
    from django.db.models import Min

    from compensation.models import CoveredSpan

    earliest = CoveredSpan.objects.aggregate(start=Min("start"))["start"]
    end = now - timedelta(minutes=5)
    if earliest is not None:
        end = min(end, earliest - timedelta(minutes=1))
    return end - OUTAGE, end


def run(ctx: Context, params: dict, members) -> dict:
    from django.db.models import Count
    from django.utils import timezone

    from compensation.models import (
        Claim,
        Incident,
        IncidentKind,
        IncidentMember,
        IncidentScope,
        LedgerEntry,
        PayoutState,
        SourceKind,
    )
    from compensation.services.incidents import incident_declare
    from members.models import MemberProfile, MemberStatus

    from .data import EMAIL_DOMAIN, ensure_members

    # Fresh, identical memberships: the check below relies on them.
    now = timezone.now()
    members = ensure_members(params["members"], now=now)
    # Benchmark members beyond this run's count (a larger earlier run) are out
    # of scope: only active members are paid by an incident.
    MemberProfile.objects.filter(
        member_no__gt=members[-1].member_no, user__email__endswith=EMAIL_DOMAIN
    ).update(status=MemberStatus.SUSPENDED)
    start, end = _outage_window(now)
    expires_before = dict(
        MemberProfile.objects.filter(pk__in=[m.pk for m in members]).values_list("pk", "expires_at")
    )
    others = (
        MemberProfile.objects.filter(status=MemberStatus.ACTIVE, expires_at__gt=start)
        .exclude(pk__in=expires_before.keys())
        .count()
    )
    if others:
        log(f"payout: {others:,} other active members in this database will be paid too")

    hostname = f"bench-payout-{uuid.uuid4().hex[:8]}@localhost"
    log_path = ctx.workdir / "celery-worker.log"
    pool_args = (
        ["--pool=prefork", f"--concurrency={params['concurrency']}"]
        if params["pool"] == "prefork"
        else ["--pool=solo"]
    )
    log(f"payout: starting celery worker ({' '.join(pool_args)})")
    worker = start_celery_worker(log_path, hostname, pool_args)
    sampler = None
    timeline = []
    try:
        sampler = TreeMemorySampler(worker.pid)
        sampler.start()

        cpu_before = cpu_snapshot()
        started = time.monotonic()
        incident = incident_declare(
            kind=IncidentKind.OUTAGE,
            scope=IncidentScope.ALL,
            node_ids=[],
            started_at=start,
            ended_at=end,
            ratio=None,
            title_zh="基准测试：全平台故障",
            title_en="Benchmark: platform-wide outage",
            actor=None,
            now=timezone.now(),
        )
        ref = str(incident.public_id)
        claims = Claim.objects.filter(source_kind=SourceKind.INCIDENT, source_ref=ref)
        first_claim_s = None
        deadline = started + params["timeout_s"]
        next_progress = started
        done = False
        while time.monotonic() < deadline:
            state = Incident.objects.filter(pk=incident.pk).values_list("payout_state", flat=True)[
                0
            ]
            elapsed = time.monotonic() - started
            if state == PayoutState.DONE:
                done = True
                break
            if worker.poll() is not None:
                raise RuntimeError("the Celery worker died:\n" + tail(log_path))
            if time.monotonic() >= next_progress:
                paid = claims.count()
                if paid and first_claim_s is None:
                    first_claim_s = round(elapsed, 2)
                timeline.append([round(elapsed, 1), paid, round(sampler.peak_rss_kb / 1024)])
                log(f"payout: {elapsed:5.1f} s, {paid:,} members paid")
                next_progress += 2.0
            time.sleep(0.1)
        seconds = time.monotonic() - started
        cpu = cpu_by_command(cpu_before, cpu_snapshot(), seconds)
        memory = sampler.stop()
        sampler = None
        if not done:
            raise RuntimeError(f"payout not done after {params['timeout_s']} s:\n" + tail(log_path))
    finally:
        if sampler is not None:
            sampler.stop()
        stop_process(worker)

    left_in_queue = queued_tasks()

    # --- verification: every affected member paid exactly once -------------------------
    affected = IncidentMember.objects.filter(incident=incident).count()
    entries = LedgerEntry.objects.filter(source_kind=SourceKind.INCIDENT, source_ref=ref)
    entry_count = entries.count()
    members_with_entry = entries.values("member_id").distinct().count()
    paid_twice = entries.values("member_id").annotate(n=Count("id")).filter(n__gt=1).count()
    unpaid = (
        IncidentMember.objects.filter(incident=incident)
        .exclude(member_id__in=entries.values("member_id"))
        .count()
    )
    outcomes = dict(
        claims.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n")
    )
    expires_after = dict(
        MemberProfile.objects.filter(pk__in=expires_before.keys()).values_list("pk", "expires_at")
    )
    extended_exactly = sum(
        1 for pk, before in expires_before.items() if expires_after[pk] - before == OUTAGE
    )
    verification = {
        "affected_members": affected,
        "claims": claims.count(),
        "ledger_entries": entry_count,
        "members_with_an_entry": members_with_entry,
        "members_paid_twice": paid_twice,
        "affected_members_without_entry": unpaid,
        "claim_outcomes": outcomes,
        "benchmark_members_extended_by_the_outage": extended_exactly,
    }
    ok = (
        entry_count == affected == members_with_entry
        and paid_twice == 0
        and unpaid == 0
        and extended_exactly == len(members)
    )
    verification["every_member_exactly_one_entry"] = ok
    if not ok:
        raise RuntimeError(f"payout verification failed: {verification}")

    per_s = round(affected / seconds)
    # The target is judged on PSS: the memory the worker's process tree really
    # occupies. Summed RSS/VmHWM counts the copy-on-write pages a prefork
    # parent shares with its children once per process; it is reported too.
    peak_mb = memory["peak_tree_pss_mb"]
    default_worker = params["pool"] == "prefork" and params["concurrency"] == 2
    return {
        "result_name": "payout"
        if default_worker
        else f"payout-{params['pool']}{params['concurrency']}",
        "parameters": {**params, "outage": [start.isoformat(), end.isoformat()]},
        "results": {
            "members_paid": affected,
            "seconds_enqueue_to_done": round(seconds, 2),
            "members_per_s": per_s,
            "first_claim_after_s": first_claim_s,
            "worker_memory": memory,
            "cpu_cores_by_command": cpu,
            # [seconds since declaration, members paid, peak worker tree RSS MB]
            "timeline": timeline,
            "verification": verification,
            # Work the payout enqueued that runs after it (member e-mails).
            "tasks_left_in_queue": left_in_queue,
        },
        "targets": [
            target("members_per_s", per_s, at_least=TARGET_MEMBERS_PER_S),
            target("worker_peak_memory_mb (PSS of the worker tree)", peak_mb, below=TARGET_PEAK_MB),
        ],
    }


def summary(result: dict) -> str:
    r = result["results"]
    m = r["worker_memory"]
    p = result["parameters"]
    return (
        f"payout: {r['members_paid']:,} members in {r['seconds_enqueue_to_done']} s = "
        f"{r['members_per_s']:,} members/s ({p['pool']}, concurrency {p['concurrency']}); "
        f"worker peak memory {m['sum_of_process_hwm_mb']} MB (sum of per-process VmHWM), "
        f"{m['peak_tree_rss_mb']} MB RSS / {m['peak_tree_pss_mb']} MB PSS sampled "
        f"(idle {m['idle_rss_mb']} / {m['idle_pss_mb']} MB)"
    )
