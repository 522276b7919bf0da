"""Celery tasks of the appeals app: thin callers of its services."""

from celery import shared_task
from django.utils import timezone

from .reminders import appeal_window_reminders, staff_digest


@shared_task(ignore_result=True)
def remind_appeal_windows() -> None:
    appeal_window_reminders(now=timezone.now())


@shared_task(ignore_result=True)
def send_staff_digest() -> None:
    staff_digest(now=timezone.now())
