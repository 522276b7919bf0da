"""Operator endpoints: /healthz (the process answers), /readyz (its
dependencies answer) and /metrics (Prometheus, protected)."""

from __future__ import annotations

import contextlib
import hmac
import time

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from kamen_portal.celery import app

from . import metrics
from .staff_gate import staff_session_allowed


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if MigrationExecutor(connection).migration_plan(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        ):
            return "migrations not applied"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def _check_broker() -> str | None:

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis(), "broker": _check_broker()}
    ready = all(v is None for v in checks.values())
    return JsonResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {k: v or "ok" for k, v in checks.items()},
        },
        status=200 if ready else 503,
    )


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    # A staff session counts only once it passed the staff gate (two-factor).
    return staff_session_allowed(request)


def _queue_depths() -> list[tuple[dict[str, str], float]]:
    """Messages waiting per Celery queue (a Redis list each; scheduled
    retries are not counted); -1 per queue when the broker is not Redis."""
    queues = settings.CELERY_QUEUES_ALL
    if not settings.REDIS_URL:
        return [({"queue": q}, -1.0) for q in queues]

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        return [({"queue": q}, float(n)) for q, n in zip(queues, pipe.execute(), strict=True)]
    finally:
        client.close()


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    extra = {}
    for collector in metrics.collectors():
        extra.update(collector())
    extra.update(
        {
            "kamen_celery_queue_depth": (
                "Messages waiting in each Celery queue (-1: the broker is not Redis).",
                _queue_depths(),
            ),
        }
    )
    return HttpResponse(
        metrics.render_exposition(extra), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


class RequestMetricsMiddleware:
    """Times every request into the latency histogram."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        with metrics.batched():
            response = self.get_response(request)
            # Metrics must never break a request (e.g. the cache is down).
            # The view's counters go in the same round trip as the latency.
            with contextlib.suppress(Exception):
                metrics.observe_request(time.perf_counter() - started)
        return response
