"""Webhook endpoints and the delivery of events to them.

Delivery is at least once: a delivery row is claimed by a conditional
UPDATE (one sender at a time), sent outside any transaction, and its outcome
recorded with one log row per attempt. A worker that dies mid-send leaves the
row "sending"; the sweeper puts it back after WEBHOOK_TIMEOUT_SECONDS plus a
margin, so the receiver may (rarely) see an event twice: receivers dedupe on
the event id (docs/integration.md). Failures retry with exponential back-off
and jitter up to WEBHOOK_MAX_ATTEMPTS; an endpoint that keeps failing is
disabled and operators are told. Its undelivered rows wait, and resume when
an operator enables it again.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from kamen_portal.queue import enqueue_now, enqueue_on_commit
from members.audit import audit_record
from members.models import NotificationKind, User
from members.services.notify import Message, notify_many

from ..events import envelope
from ..models import (
    DeliveryAttempt,
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
)
from ..signing import SIGNATURE_HEADER, signature_header
from ..targets import Target, check_target
from .events import DELIVERY_CHUNK

SECRET_PREFIX = "whsec_"
USER_AGENT = "Kamen-Webhooks/1"


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _clean_types(event_types) -> list[str]:
    valid = set(EventType.values)
    return sorted({t for t in (event_types or []) if t in valid})


def endpoint_create(
    *, url: str, description: str, event_types: list[str], actor: User | None, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint (its target must pass the SSRF check). Returns the
    endpoint and its signing secret, which is shown to the operator once."""
    check_target(url)
    secret = _new_secret()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        description=description,
        event_types=_clean_types(event_types),
        secret=secret,
        secret_prefix=secret[:12],
        created_by=actor,
        created_at=now,
    )
    return endpoint, secret


def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, description: str, event_types: list[str]
) -> WebhookEndpoint:
    check_target(url)
    endpoint.url = url
    endpoint.description = description
    endpoint.event_types = _clean_types(event_types)
    endpoint.save(update_fields=["url", "description", "event_types"])
    return endpoint


def endpoint_roll_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret at once (the old one stops verifying); shown once."""
    secret = _new_secret()
    old_prefix = endpoint.secret_prefix
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret, secret_prefix=secret[:12])
    # On the trail by its prefix only: the secret never enters it.
    audit_record(endpoint, changes={"secret_prefix": [old_prefix, secret[:12]]})
    return secret


def endpoint_enable(*, endpoint: WebhookEndpoint, now: datetime) -> int:
    """Enable again; its waiting deliveries are due now. Returns how many."""
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=False).exists():
            audit_record(endpoint, changes={"enabled": [False, True]})
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            enabled=True,
            disabled_at=None,
            disabled_reason="",
            failing_since=None,
            consecutive_failures=0,
        )
        return WebhookDelivery.objects.filter(
            endpoint=endpoint, status=DeliveryStatus.PENDING
        ).update(next_attempt_at=now)


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
    """Stop sending to ``endpoint``. True if this call disabled it."""
    disabled = bool(
        WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason[:200]
        )
    )
    if disabled:
        audit_record(endpoint, changes={"enabled": [True, False]})
    return disabled


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` + 1: exponential from the
    base, capped at the maximum, with "equal jitter" (half fixed, half
    random) so receivers coming back are not hit by every sender at once."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    cap = settings.WEBHOOK_RETRY_MAX_SECONDS
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def _claim(delivery_id: int, now: datetime) -> bool:
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
            endpoint__enabled=True,
        ).update(status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )


# --- Transport: connect only to the addresses the target check approved. ---
#
# urllib3 left to itself resolves the host again when it connects, and a name
# may answer a public address to the check and 127.0.0.1 to the connection
# (DNS rebinding). So the sockets are opened here, to the checked IP
# addresses, while the connection keeps the URL's host name for SNI, the
# certificate check and the Host header. No redirects (a 302 to
# 169.254.169.254 would walk around the target check), no urllib3 retries
# (ours are scheduled and logged).

# A name with many addresses is tried on its first few only: each try may
# take the connect timeout, and a "sending" row is swept back after
# 2 x WEBHOOK_TIMEOUT_SECONDS + 60 s.
CONNECT_ADDRESSES = 3


def _open_socket(address, port: int, timeout, socket_options) -> socket.socket:
    """A TCP connection to this IP address (no name lookup of any kind)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in socket_options or ():
            sock.setsockopt(*option)
        if timeout is None or isinstance(timeout, int | float):
            sock.settimeout(timeout)
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedConnectionMixin:
    """Replaces urllib3's ``_new_conn`` (which resolves ``self.host``) with a
    connection to one of ``pinned_addresses``; everything else, TLS included,
    still sees ``self.host``."""

    def __init__(self, *args, pinned_addresses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned_addresses = tuple(pinned_addresses)

    def _new_conn(self) -> socket.socket:
        error: Exception | None = None
        for address in self.pinned_addresses[:CONNECT_ADDRESSES]:
            try:
                return _open_socket(address, self.port, self.timeout, self.socket_options)
            except TimeoutError as exc:
                error = ConnectTimeoutError(
                    self, f"Connection to {self.host} ({address}) timed out."
                )
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(
                    self, f"Failed to establish a new connection to {address}: {exc}"
                )
                error.__cause__ = exc
        raise error or NewConnectionError(self, "No checked address to connect to.")


class PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class PinnedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class PinnedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


# Pools by (scheme, host, port, checked addresses): keep-alive connections are
# reused between deliveries to one receiver, and a change of DNS answer gets a
# new pool, so a connection is never reused for an address not just checked.
_POOLS: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()
_POOLS_LOCK = threading.Lock()
MAX_POOLS = 50


def _pool_for(target: Target) -> urllib3.HTTPConnectionPool:
    key = (target.scheme, target.host, target.port, target.addresses)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is not None:
            _POOLS.move_to_end(key)
            return pool
        options = {"maxsize": 4, "block": False, "retries": False}
        if target.scheme == "https":
            pool = PinnedHTTPSConnectionPool(
                target.host,
                target.port,
                cert_reqs="CERT_REQUIRED",
                pinned_addresses=target.addresses,
                **options,
            )
        else:
            pool = PinnedHTTPConnectionPool(
                target.host, target.port, pinned_addresses=target.addresses, **options
            )
        _POOLS[key] = pool
        while len(_POOLS) > MAX_POOLS:
            _POOLS.popitem(last=False)[1].close()
        return pool


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery, body: bytes):
    """(status code or None, error text, response excerpt)."""
    try:
        target = check_target(endpoint.url)
    except ValueError as exc:
        return None, f"refused target: {exc}", ""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secret=endpoint.secret, timestamp=timestamp, body=body),
        "Kamen-Event-Id": str(delivery.event.public_id),
        "Kamen-Event-Type": delivery.event.type,
        "Kamen-Delivery-Id": str(delivery.public_id),
    }
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        response = _pool_for(target).urlopen(
            "POST",
            target.request_uri,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=min(5, timeout), read=timeout),
            preload_content=False,
        )
        try:
            excerpt = response.read(500, decode_content=False).decode("utf-8", "replace")
        finally:
            response.release_conn()
        return response.status, "", excerpt
    except urllib3.exceptions.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300], ""


def webhook_deliver(*, delivery_id: int, now: datetime) -> str | None:
    """Send one delivery if it is due and nobody else is sending it. Returns
    the new status, or None when there was nothing to do."""
    return webhooks_deliver(delivery_ids=[delivery_id], now=now).get(delivery_id)


# Concurrent HTTP requests per task: a slow receiver (up to the timeout) must
# not hold the other deliveries of the chunk behind it.
SEND_THREADS = 8


def webhooks_deliver(*, delivery_ids: list[int], now: datetime) -> dict[int, str]:
    """Claim the due ones among ``delivery_ids`` (one sender each), send them
    concurrently (HTTP only: the database work stays on this thread), and
    record every outcome. Returns {delivery id: new status}."""
    claimed = [d for d in delivery_ids if _claim(d, now)]
    if not claimed:
        return {}
    deliveries = list(
        WebhookDelivery.objects.select_related("event", "endpoint")
        .filter(pk__in=claimed)
        .order_by("pk")
    )

    def send(delivery):
        body = json.dumps(envelope(delivery.event), ensure_ascii=False, separators=(",", ":"))
        started = time.monotonic()
        code, error, excerpt = _post(delivery.endpoint, delivery, body.encode())
        return code, error, excerpt, int((time.monotonic() - started) * 1000)

    if len(deliveries) == 1:
        outcomes = [send(deliveries[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(deliveries))) as pool:
            outcomes = list(pool.map(send, deliveries))
    statuses = {}
    for delivery, (code, error, excerpt, duration_ms) in zip(deliveries, outcomes, strict=True):
        ok = code is not None and 200 <= code < 300
        if code is not None and not ok:
            error = f"HTTP {code}"
        statuses[delivery.pk] = _record(
            delivery,
            ok=ok,
            code=code,
            error=error,
            excerpt=excerpt,
            duration_ms=duration_ms,
            now=now,
        )
    return statuses


def _record(delivery, *, ok, code, error, excerpt, duration_ms, now) -> str:
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=now,
            duration_ms=duration_ms,
            status_code=code,
            error=error[:300],
            response_excerpt=excerpt[:500],
            succeeded=ok,
        )
        if ok:
            status = DeliveryStatus.SUCCEEDED
            fields = {"delivered_at": now, "next_attempt_at": None}
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            status, fields = DeliveryStatus.FAILED, {"next_attempt_at": None}
        else:
            status = DeliveryStatus.PENDING
            fields = {"next_attempt_at": now + timedelta(seconds=retry_delay(delivery.attempts))}
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
            status=status, last_status_code=code, last_error=error[:300], **fields
        )
        _endpoint_health(delivery.endpoint, ok=ok, now=now)
    return status


def _endpoint_health(endpoint: WebhookEndpoint, *, ok: bool, now: datetime) -> None:
    if ok:
        # Nothing to write on the happy path (most deliveries).
        if endpoint.consecutive_failures or endpoint.failing_since:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                consecutive_failures=0, failing_since=None
            )
        return
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.consecutive_failures += 1
    locked.failing_since = locked.failing_since or now
    locked.save(update_fields=["consecutive_failures", "failing_since"])
    failing_for = (now - locked.failing_since).total_seconds()
    if (
        locked.enabled
        and locked.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
        and failing_for >= settings.WEBHOOK_DISABLE_AFTER_SECONDS
    ):
        reason = f"{locked.consecutive_failures} failed attempts in a row since {locked.failing_since.isoformat()}"
        if endpoint_disable(endpoint=locked, reason=reason, now=now):
            _notify_operators(locked, now=now)


def _operators():
    return (
        User.objects.filter(is_active=True, is_staff=True)
        .filter(Q(groups__name="Operators") | Q(is_superuser=True))
        .distinct()
    )


def _notify_operators(endpoint: WebhookEndpoint, *, now: datetime) -> None:
    def render():
        return (
            _("Webhook endpoint disabled: %(url)s") % {"url": endpoint.url},
            _(
                "Deliveries to %(url)s failed %(n)d times in a row since %(since)s, so the "
                "endpoint was disabled. Its undelivered events wait; enable it again in the "
                "admin once the receiver works."
            )
            % {
                "url": endpoint.url,
                "n": endpoint.consecutive_failures,
                "since": endpoint.failing_since.strftime("%Y-%m-%d %H:%M UTC"),
            },
            f"/admin/integrations/webhookendpoint/{endpoint.pk}/change/",
        )

    stamp = now.strftime("%Y%m%d%H%M%S")
    notify_many(
        messages=[
            Message(
                kind=NotificationKind.WEBHOOK_DISABLED,
                dedupe_key=f"webhook-disabled:{endpoint.public_id}:{stamp}:{user.pk}",
                user_id=user.pk,
                render=render,
            )
            for user in _operators()
        ],
        now=now,
    )


def deliveries_redeliver(*, delivery_ids: list[int], now: datetime) -> int:
    """Send these deliveries again now (failed ones get one more attempt,
    delivered ones are sent once more: receivers dedupe on the event id).
    Rows of disabled endpoints wait until the endpoint is enabled."""
    due = WebhookDelivery.objects.filter(
        pk__in=delivery_ids,
        status__in=(DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED, DeliveryStatus.PENDING),
    )
    before = list(due.only("pk", "status"))
    updated = due.update(status=DeliveryStatus.PENDING, next_attempt_at=now)
    for delivery in before:
        audit_record(delivery, changes={"status": [delivery.status, DeliveryStatus.PENDING]})
    ids = sorted(delivery_ids)
    for start in range(0, len(ids), DELIVERY_CHUNK):
        enqueue_on_commit(
            "integrations.tasks.deliver_webhooks", ids[start : start + DELIVERY_CHUNK]
        )
    return updated


SWEEP_LIMIT = 5000
# A fresh delivery is enqueued on commit; the sweeper waits this long before
# assuming that enqueue was lost.
FRESH_GRACE = timedelta(seconds=60)


def deliveries_sweep(*, now: datetime) -> int:
    """Put stuck "sending" rows back, then enqueue every due delivery of an
    enabled endpoint (retries that are due, and fresh ones whose enqueue was
    lost). Returns how many were enqueued."""
    stale = now - timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    WebhookDelivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now
    )
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, endpoint__enabled=True, next_attempt_at__lte=now
        )
        .filter(Q(attempts__gt=0) | Q(created_at__lte=now - FRESH_GRACE))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    for start in range(0, len(due), DELIVERY_CHUNK):
        enqueue_now("integrations.tasks.deliver_webhooks", due[start : start + DELIVERY_CHUNK])
    return len(due)
