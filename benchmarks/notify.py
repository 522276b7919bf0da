"""Notification fan-out: one incident notice to 100,000 affected members.

Staff declare an ongoing platform-wide incident; on commit that enqueues the
``notify_incident`` task, and a real Celery worker (prefork, 2 processes)
records one notification per affected member (inbox row; email queued as
batches of 500 for the mail tasks). The clock runs from the declaration until
every notification is recorded and its email batch is queued; the worker's
process tree is sampled for memory meanwhile. The mail tasks themselves run
afterwards on the same worker (to a dummy mail backend) and are not timed.
"""

from __future__ import annotations

import time
import uuid

from .harness import (
    Context,
    TreeMemorySampler,
    cpu_by_command,
    cpu_snapshot,
    log,
    start_celery_worker,
    stop_process,
    tail,
    target,
)

TARGET_PER_S = 2_000
TARGET_PEAK_MB = 300
TIMEOUT_S = 600


def params_for(args) -> dict:
    return {
        "members": args.members or (5_000 if args.quick else 100_000),
        "concurrency": 2,
        "timeout_s": TIMEOUT_S,
    }


def run(ctx: Context, params: dict, members) -> dict:
    from django.utils import timezone

    from compensation.models import IncidentKind, IncidentScope
    from compensation.services.incidents import incident_declare
    from members.models import EmailStatus, MemberProfile, MemberStatus, Notification

    from .data import EMAIL_DOMAIN, ensure_members

    now = timezone.now()
    members = ensure_members(params["members"], now=now)
    MemberProfile.objects.filter(
        member_no__gt=members[-1].member_no, user__email__endswith=EMAIL_DOMAIN
    ).update(status=MemberStatus.SUSPENDED)
    affected = MemberProfile.objects.filter(status=MemberStatus.ACTIVE, expires_at__gt=now).count()

    hostname = f"bench-notify-{uuid.uuid4().hex[:8]}@localhost"
    log_path = ctx.workdir / "celery-notify.log"
    worker = start_celery_worker(
        log_path, hostname, ["--pool=prefork", f"--concurrency={params['concurrency']}"]
    )
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
            started_at=now,
            ended_at=None,
            ratio=None,
            title_zh="基准测试：全平台故障通知",
            title_en="Benchmark: platform-wide incident notice",
            actor=None,
            now=now,
        )
        prefix = f"incident:{incident.public_id}:declared:"
        recorded = Notification.objects.filter(dedupe_key__startswith=prefix)
        deadline = started + params["timeout_s"]
        next_progress = started
        count = 0
        while time.monotonic() < deadline:
            count = recorded.count()
            elapsed = time.monotonic() - started
            if count >= affected:
                break
            if worker.poll() is not None:
                raise RuntimeError("the Celery worker died:\n" + tail(log_path))
            if time.monotonic() >= next_progress:
                timeline.append([round(elapsed, 1), count, round(sampler.peak_rss_kb / 1024)])
                log(f"notify: {elapsed:5.1f} s, {count:,} notifications recorded")
                next_progress += 2.0
            time.sleep(0.05)
        seconds = time.monotonic() - started
        cpu = cpu_by_command(cpu_before, cpu_snapshot(), seconds)
        memory = sampler.stop()
        sampler = None
        if count < affected:
            raise RuntimeError(
                f"only {count:,} of {affected:,} notifications after {params['timeout_s']} s"
            )
    finally:
        if sampler is not None:
            sampler.stop()
        stop_process(worker)
    per_s = round(affected / seconds)
    duplicates = recorded.count() - recorded.values("user_id").distinct().count()
    return {
        "parameters": params,
        "results": {
            "notifications_recorded": affected,
            "seconds_declaration_to_all_recorded": round(seconds, 2),
            "notifications_per_s": per_s,
            "emails_pending_or_sent": recorded.exclude(email_status=EmailStatus.SKIPPED).count(),
            "duplicates": duplicates,
            "worker_memory": memory,
            "cpu_cores_by_command": cpu,
            "timeline": timeline,
        },
        "targets": [
            target("notifications_per_s", per_s, at_least=TARGET_PER_S),
            target(
                "worker_peak_memory_mb (PSS of the worker tree)",
                memory["peak_tree_pss_mb"],
                below=TARGET_PEAK_MB,
            ),
        ],
    }


def summary(result: dict) -> str:
    r = result["results"]
    m = r["worker_memory"]
    return (
        f"notify: {r['notifications_recorded']:,} incident notices recorded and queued in "
        f"{r['seconds_declaration_to_all_recorded']} s = {r['notifications_per_s']:,}/s; worker peak PSS "
        f"{m['peak_tree_pss_mb']} MB (summed RSS {m['sum_of_process_hwm_mb']} MB)"
    )
