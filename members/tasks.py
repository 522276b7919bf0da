"""Celery tasks of the members app: thin callers of its services (tasks
import services; services name tasks through kamen_portal.queue)."""

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from .services.delivery import (
    TransientEmailError,
    notification_email_send,
    notification_emails_send,
    notification_relay,
)
from .services.exports import export_build, exports_expire, exports_sweep

WORKER_HEARTBEAT_KEY = "celery:worker:last_seen"


@shared_task(ignore_result=True)
def record_worker_heartbeat() -> None:
    """Leave a timestamp in the shared cache so operators (and readiness
    checks) can tell that a worker consumed from the broker recently."""
    cache.set(WORKER_HEARTBEAT_KEY, timezone.now().isoformat(), timeout=3600)


@shared_task(ignore_result=True)
def send_notification_emails(notification_ids: list[int]) -> None:
    """Send a batch over one SMTP connection; a failing email is retried on
    its own, with backoff; if the batch stopped (the server is down), the
    untried rest is sent again as a batch after the same back-off."""
    outcome = notification_emails_send(notification_ids=notification_ids, now=timezone.now())
    for notification_id, retry_in in outcome.retry.items():
        send_notification_email.apply_async(args=(notification_id,), countdown=retry_in)
    if outcome.released:
        send_notification_emails.apply_async(
            args=(outcome.released,), countdown=max(outcome.retry.values(), default=30)
        )


@shared_task(ignore_result=True)
def send_notification_email(notification_id: int) -> None:
    try:
        notification_email_send(notification_id=notification_id, now=timezone.now())
    except TransientEmailError as exc:
        send_notification_email.apply_async(args=(notification_id,), countdown=exc.retry_in)


@shared_task(ignore_result=True)
def relay_notifications() -> None:
    notification_relay(now=timezone.now())


@shared_task(ignore_result=True)
def build_export(export_id: int) -> None:
    export_build(export_id=export_id, now=timezone.now())


@shared_task(ignore_result=True)
def expire_exports() -> None:
    exports_expire(now=timezone.now())


@shared_task(ignore_result=True)
def sweep_exports() -> None:
    exports_sweep(now=timezone.now())
