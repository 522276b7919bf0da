"""Webhook fan-out: events delivered per second by a real Celery worker.

A receiver process (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive, on
127.0.0.1) counts the POSTs it gets for each of the registered endpoints.
A real ``celery worker`` (prefork, 2 processes, queue ``webhooks``) runs
``deliver_webhooks`` as in production. The clock starts when the first batch
of events is recorded (``events_record``, 500 events per transaction, as an
incident payout chunk would) and stops when every delivery row is
``succeeded``: events/s and deliveries/s are for the whole path from the
outbox commit to the receiver's 200, with signing, the SSRF check (a
resolve per delivery), the attempt log row and the status update.

The events are synthetic ``membership.credited`` events (not ledger
entries): the ledger's own cost is measured by ``payout``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .harness import (
    Context,
    cpu_by_command,
    cpu_snapshot,
    free_port,
    log,
    percentile,
    start_celery_worker,
    stop_process,
    target,
)

CHUNK = 500


def params_for(args) -> dict:
    return {
        "members": 1_000,
        "events": 2_000 if args.quick else 10_000,
        "endpoints": 2,
        "worker_concurrency": args.concurrency or 2,
    }


def _receive(port: int, counter) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with counter.get_lock():
                counter.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def run(ctx: Context, params: dict, members) -> dict:
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from integrations.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
    from integrations.services.events import NewEvent, events_record
    from integrations.services.webhooks import endpoint_create

    os.environ["WEBHOOK_ALLOWED_PRIVATE_NETWORKS"] = "127.0.0.1/32"
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    port = free_port()
    # Spawned, not forked: a forked child would inherit (and on exit tear
    # down) this process's broker connection, and its publishes would be lost.
    mp = multiprocessing.get_context("spawn")
    counter = mp.Value("q", 0)
    receiver = mp.Process(target=_receive, args=(port, counter), daemon=True)
    receiver.start()

    now = timezone.now()
    endpoints = [
        endpoint_create(
            url=f"http://127.0.0.1:{port}/bench/{i}",
            description="benchmark",
            event_types=[],
            actor=None,
            now=now,
        )[0]
        for i in range(params["endpoints"])
    ]
    worker = None
    try:
        worker = start_celery_worker(
            ctx.workdir / "worker-webhooks.log",
            f"bench-webhooks-{os.getpid()}@localhost",
            [
                "-Q",
                "webhooks",
                "--pool",
                "prefork",
                "--concurrency",
                str(params["worker_concurrency"]),
            ],
        )
        numbers = [m.member_no for m in members] or ["KM90000000"]
        total = params["events"]
        expected = total * params["endpoints"]
        log(f"webhooks: recording {total:,} events for {params['endpoints']} endpoints")
        cpu_before, started = cpu_snapshot(), time.monotonic()
        for start in range(0, total, CHUNK):
            batch = [
                NewEvent(
                    type="membership.credited",
                    cause=f"bench:{now.timestamp()}:{i}",
                    member_no=numbers[i % len(numbers)],
                    data={
                        "member": numbers[i % len(numbers)],
                        "entry": {"id": str(i), "minutes": 12, "kind": "credit"},
                        "expires_before": now.isoformat(),
                        "expires_after": now.isoformat(),
                    },
                )
                for i in range(start, min(total, start + CHUNK))
            ]
            with transaction.atomic():
                events_record(events=batch, now=timezone.now())
        recorded_s = time.monotonic() - started
        ids = WebhookDelivery.objects.filter(endpoint__in=endpoints)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            done = ids.filter(status=DeliveryStatus.SUCCEEDED).count()
            if done >= expected:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        cpu = cpu_by_command(cpu_before, cpu_snapshot(), elapsed, labels={receiver.pid: "receiver"})
        latencies = [
            (d - c).total_seconds()
            for c, d in ids.filter(status=DeliveryStatus.SUCCEEDED).values_list(
                "created_at", "delivered_at"
            )
        ]
        failed = ids.exclude(status=DeliveryStatus.SUCCEEDED).count()
    finally:
        if worker is not None:
            stop_process(worker)
        receiver.terminate()
        # Benchmark endpoints must not receive the next benchmark's events.
        WebhookEndpoint.objects.filter(pk__in=[e.pk for e in endpoints]).delete()
    deliveries_per_s = round(done / elapsed, 1)
    events_per_s = round(done / params["endpoints"] / elapsed, 1)
    return {
        "parameters": params,
        "results": {
            "events": total,
            "deliveries_expected": expected,
            "deliveries_succeeded": done,
            "deliveries_not_succeeded": failed,
            "receiver_posts": counter.value,
            "record_s": round(recorded_s, 2),
            "elapsed_s": round(elapsed, 2),
            "events_per_s": events_per_s,
            "deliveries_per_s": deliveries_per_s,
            "commit_to_delivered_s": {
                "p50": round(percentile(latencies, 50) or 0, 2),
                "p99": round(percentile(latencies, 99) or 0, 2),
            },
            "cpu_cores_by_command": cpu,
        },
        "targets": [target("deliveries_succeeded", done, at_least=expected)],
    }


def summary(result: dict) -> str:
    r = result["results"]
    return (
        f"webhooks: {r['events']:,} events x {result['parameters']['endpoints']} endpoints in "
        f"{r['elapsed_s']} s: {r['events_per_s']:,} events/s, {r['deliveries_per_s']:,} "
        f"deliveries/s, commit-to-delivered p50 {r['commit_to_delivered_s']['p50']} s"
    )
