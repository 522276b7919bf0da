"""Thin Celery entry points; the work is in services.webhooks."""

from celery import shared_task
from django.utils import timezone

from .services.webhooks import deliveries_sweep, webhooks_deliver


@shared_task(ignore_result=True)
def deliver_webhooks(delivery_ids: list[int]) -> None:
    """Send due deliveries (each claimed first: safe to run twice)."""
    webhooks_deliver(delivery_ids=list(delivery_ids), now=timezone.now())


@shared_task(ignore_result=True)
def sweep_webhook_deliveries() -> None:
    deliveries_sweep(now=timezone.now())
