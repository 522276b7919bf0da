"""Queue isolation: how late the detection pass starts while a big payout runs.

Staff declare a platform-wide outage that already ended, over 100,000
members (as in ``payout``): it closes at once and enqueues ``pay_incident``;
the payout then queues 200 chunks of 500 members, and every credit and the
resolution queue notices and e-mail batches for everyone. Meanwhile the
benchmark sends ``detect_disconnects`` every ``pass_every_s`` seconds, as
beat does every 30 s, with beat's 25-second expiry, and records when each
pass *starts* on a worker (Celery ``task-started`` events, ``-E``). Start
latency = start - send; a pass that expired in the queue counts as never
started (latency infinite).

Two layouts on the same 2 cores, one after the other:

- ``isolated`` (the production layout of the deployment guide): a solo
  worker on ``detection`` and a prefork worker (2 processes) on ``payouts``,
  ``notifications``, ``exports`` and ``celery``;
- ``shared`` (what one queue meant before): one prefork worker (2 processes)
  consuming every queue, so the pass waits behind the bulk work.

The clock runs from the declaration until the payout is done and 30 s more
(its notices and e-mails still being recorded and sent), until every queue is
empty, or for at most 300 s (120 with --quick); what is still queued then,
and how much of the payout was done, is reported. Leftovers are purged before
the next layout. Target: p99 start latency of the
isolated layout under the beat interval (30 s).
"""

from __future__ import annotations

import math
import threading
import time
import uuid

from .harness import (
    Context,
    cpu_by_command,
    cpu_snapshot,
    log,
    percentile,
    purge_task_queue,
    queued_tasks,
    start_celery_worker,
    stop_process,
    tail,
    target,
)

BEAT_INTERVAL_S = 30.0
PASS_EXPIRES_S = 25  # as the beat entry's expire_seconds
BULK_QUEUES = "payouts,notifications,exports,celery"


def params_for(args) -> dict:
    return {
        "members": args.members or (5_000 if args.quick else 100_000),
        "pass_every_s": 2.0,
        # Measured until the payout is done and this much longer (the notices
        # and e-mails it queued still running), until every queue is empty, or
        # for at most measure_s: the passes sampled meanwhile all ran behind
        # (or beside) the payout, which is what is measured. On a busy machine
        # the payout may not finish inside the window; that is reported.
        "after_payout_s": 30.0,
        "measure_s": 120.0 if args.quick else 300.0,
        "layouts": ["isolated", "shared"],
    }


class PassStarts:
    """Listens to the workers' task events in a thread: when each detection
    pass started, or that it expired unstarted."""

    def __init__(self):
        from kamen_portal.celery import app

        self.app = app
        self.started: dict[str, float] = {}
        self.revoked: set[str] = set()
        self._receiver = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_started(self, event: dict) -> None:
        # task-started carries no task name: every task's start is kept and
        # the passes are picked out by their ids.
        self.started.setdefault(event["uuid"], event["timestamp"])

    def _on_revoked(self, event: dict) -> None:
        self.revoked.add(event["uuid"])

    def _run(self) -> None:
        with self.app.connection() as conn:
            self._receiver = self.app.events.Receiver(
                conn,
                handlers={"task-started": self._on_started, "task-revoked": self._on_revoked},
            )
            self._ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        time.sleep(1.0)  # the receiver's queue is bound before the first event

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)


def _start_workers(ctx: Context, layout: str, tag: str) -> list:
    if layout == "isolated":
        return [
            start_celery_worker(
                ctx.workdir / f"queues-{layout}-detection.log",
                f"bench-detect-{tag}@localhost",
                ["-Q", "detection", "--pool=solo", "-E"],
            ),
            start_celery_worker(
                ctx.workdir / f"queues-{layout}-bulk.log",
                f"bench-bulk-{tag}@localhost",
                ["-Q", BULK_QUEUES, "--pool=prefork", "--concurrency=2", "-E"],
            ),
        ]
    return [
        start_celery_worker(
            ctx.workdir / f"queues-{layout}.log",
            f"bench-all-{tag}@localhost",
            ["-Q", "detection," + BULK_QUEUES, "--pool=prefork", "--concurrency=2", "-E"],
        )
    ]


def _queues_empty() -> bool:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return all(client.llen(q) == 0 for q in settings.CELERY_QUEUES_ALL)
    finally:
        client.close()


def _run_layout(ctx: Context, params: dict, layout: str) -> dict:
    from django.utils import timezone

    from compensation.models import (
        Claim,
        Incident,
        IncidentKind,
        IncidentScope,
        PayoutState,
        SourceKind,
    )
    from compensation.services.incidents import incident_declare
    from compensation.tasks import detect_disconnects
    from members.models import MemberProfile, MemberStatus

    from .data import EMAIL_DOMAIN, ensure_members
    from .payout import _outage_window

    now = timezone.now()
    members = ensure_members(params["members"], now=now)
    MemberProfile.objects.filter(
        member_no__gt=members[-1].member_no, user__email__endswith=EMAIL_DOMAIN
    ).update(status=MemberStatus.SUSPENDED)
    start, end = _outage_window(now)

    tag = uuid.uuid4().hex[:8]
    log(f"queues ({layout}): starting workers")
    workers = _start_workers(ctx, layout, tag)
    listener = PassStarts()
    sent: dict[str, float] = {}
    payout_s = None
    incident = None
    paid = 0
    try:
        listener.start()
        cpu_before = cpu_snapshot()
        started = time.monotonic()
        incident = incident_declare(
            kind=IncidentKind.OUTAGE,
            scope=IncidentScope.ALL,
            node_ids=[],
            started_at=start,
            ended_at=end,
            ratio=None,
            title_zh="基准测试：队列隔离",
            title_en="Benchmark: queue isolation",
            actor=None,
            now=timezone.now(),
        )
        deadline = started + params["measure_s"]
        next_pass = started
        next_progress = started
        while time.monotonic() < deadline:
            clock = time.monotonic()
            if clock >= next_pass:
                result = detect_disconnects.apply_async(expires=PASS_EXPIRES_S)
                sent[result.id] = time.time()
                next_pass += params["pass_every_s"]
            for worker in workers:
                if worker.poll() is not None:
                    raise RuntimeError("a Celery worker died")
            if payout_s is None:
                state = Incident.objects.filter(pk=incident.pk).values_list(
                    "payout_state", flat=True
                )[0]
                if state == PayoutState.DONE:
                    payout_s = clock - started
            elif clock - started >= payout_s + params["after_payout_s"] or _queues_empty():
                break
            if clock >= next_progress:
                log(
                    f"queues ({layout}): {clock - started:5.1f} s, {len(sent)} passes sent, "
                    f"{len(sent.keys() & listener.started.keys())} started, payout "
                    + ("done" if payout_s is not None else "running")
                )
                next_progress += 5.0
            time.sleep(0.05)
        seconds = time.monotonic() - started
        cpu = cpu_by_command(cpu_before, cpu_snapshot(), seconds)
        left = queued_tasks()
        # The last passes sent may still be starting.
        settle = time.monotonic() + PASS_EXPIRES_S + 5
        while time.monotonic() < settle and len(
            sent.keys() & (listener.started.keys() | listener.revoked)
        ) < len(sent):
            time.sleep(0.2)
    except Exception:
        for path in sorted(ctx.workdir.glob(f"queues-{layout}*.log")):
            log(f"{path.name}:\n" + tail(path))
        raise
    finally:
        listener.stop()
        for worker in workers:
            stop_process(worker)
        # What this layout left (an unfinished payout, queued notices) must
        # not run in the next one, nor be swept back in by its passes.
        purge_task_queue()
        if incident is not None:
            paid = Claim.objects.filter(
                source_kind=SourceKind.INCIDENT, source_ref=str(incident.public_id)
            ).count()
            Incident.objects.filter(pk=incident.pk).update(payout_state=PayoutState.DONE)

    latencies = [
        max(0.0, listener.started[tid] - at) if tid in listener.started else math.inf
        for tid, at in sent.items()
    ]
    finite = [x for x in latencies if math.isfinite(x)]

    def pct(p):
        value = percentile(latencies, p)
        return None if value is None or not math.isfinite(value) else round(value, 3)

    return {
        "layout": layout,
        "members": len(members),
        "seconds_measured": round(seconds, 1),
        "payout_seconds": round(payout_s, 1) if payout_s is not None else None,
        "payout_done_in_window": payout_s is not None,
        "members_paid_in_window": paid,
        "members_per_s": round(paid / (payout_s or seconds)) if paid else 0,
        "passes_sent": len(sent),
        "passes_started": len(finite),
        "passes_never_started_expired": len(latencies) - len(finite),
        "start_latency_s": {
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "max": round(max(finite), 3) if finite else None,
        },
        "cpu_cores_by_command": cpu,
        "tasks_left_in_queues_at_end": left,
    }


def run(ctx: Context, params: dict, members) -> dict:
    layouts = {}
    for layout in params["layouts"]:
        layouts[layout] = _run_layout(ctx, params, layout)
        log(f"queues ({layout}): {layouts[layout]['start_latency_s']}")
    isolated = layouts.get("isolated", {}).get("start_latency_s", {}).get("p99")
    return {
        "parameters": params,
        "results": layouts,
        "targets": [
            target(
                "detection pass start latency p99, isolated queues (s)",
                isolated,
                below=BEAT_INTERVAL_S,
            )
        ],
    }


def summary(result: dict) -> str:
    parts = []
    for layout, r in result["results"].items():
        lat = r["start_latency_s"]
        parts.append(
            f"{layout}: pass start p50 {lat['p50']} s, p99 {lat['p99']} s, max {lat['max']} s, "
            f"{r['passes_never_started_expired']}/{r['passes_sent']} expired unstarted, "
            + (
                f"payout {r['members']:,} members in {r['payout_seconds']} s"
                if r["payout_done_in_window"]
                else f"payout {r['members_paid_in_window']:,}/{r['members']:,} members paid "
                f"in the {r['seconds_measured']} s measured"
            )
        )
    return "queues: " + "; ".join(parts)
