"""Delivering notification emails.

- Each email goes out at most once per successful claim: a pending -> sending
  update that must change exactly one row. A worker that dies mid-send leaves
  the row "sending"; the relay reclaims it after a lease, and the fixed
  Message-ID lets mail systems drop the rare duplicate.
- SMTP failures retry with exponential backoff and jitter, capped at
  EMAIL_RETRY_MAX_DELAY, for at least EMAIL_RETRY_HOURS; then they end
  "failed" with the error kept, visible to operators, who may retry them.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from kamen_portal.http import portal_url
from kamen_portal.queue import enqueue_now

from ..audit import audit_record
from ..models import (
    ALWAYS_EMAILED,
    EmailStatus,
    Notification,
    NotificationKind,
    User,
)
from .notify import enqueue_emails
from .subscribers import unsubscribe_token as subscriber_unsubscribe_token

logger = logging.getLogger(__name__)

MAX_ATTEMPTS_STORED = 30_000  # Notification.email_attempts is a small integer
# A claim older than this belongs to a worker that died mid-send.
SENDING_LEASE = timedelta(minutes=10)
# How long the outcome of a send is retried against a database that went away
# (a PostgreSQL restart takes seconds).
RECORD_FOR = timedelta(seconds=60)
# Pending this long without being sent: the enqueue after commit was lost.
RELAY_AFTER = timedelta(minutes=1)
UNSUBSCRIBE_SALT = "kamen.notifications.unsubscribe"


def unsubscribe_token(*, user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_read(token: str) -> tuple[int, str] | None:
    """The (user, kind) a genuine unsubscribe token names, or None."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("k") not in NotificationKind.values:
        return None
    return int(data["u"]), data["k"]


def _absolute(path: str) -> str:
    return portal_url(path) if path else ""


def _subscriber_email_for(notification: Notification) -> EmailMultiAlternatives:
    """An email to an address without an account (status subscribers): the
    same outbox and retries; its own footer and one-click unsubscribe."""
    subscriber = notification.subscriber
    unsubscribe = ""
    if notification.kind != NotificationKind.SUBSCRIPTION_CONFIRM:
        unsubscribe = _absolute(
            reverse(
                "members:subscriber-unsubscribe",
                kwargs={"token": subscriber_unsubscribe_token(subscriber)},
            )
        )
    context = {
        "notification": notification,
        "link": _absolute(notification.url),
        "unsubscribe": unsubscribe,
        "portal_url": _absolute("/"),
        "confirming": not unsubscribe,
    }
    with translation.override(subscriber.language):
        text = render_to_string("emails/status_subscriber.txt", context)
        html = render_to_string("emails/status_subscriber.html", context)
    headers = {"Message-ID": f"<notification-{notification.pk}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"}
    if unsubscribe:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=notification.title, body=text, to=[subscriber.email], headers=headers
    )
    message.attach_alternative(html, "text/html")
    return message


def _email_for(notification: Notification) -> EmailMultiAlternatives:
    if notification.subscriber_id is not None:
        return _subscriber_email_for(notification)
    user = notification.user
    language = getattr(getattr(user, "member", None), "language", settings.LANGUAGE_CODE)
    unsubscribe = ""
    if notification.kind not in ALWAYS_EMAILED:
        unsubscribe = _absolute(
            reverse(
                "members:unsubscribe",
                kwargs={"token": unsubscribe_token(user_id=user.pk, kind=notification.kind)},
            )
        )
    context = {
        "notification": notification,
        "link": _absolute(notification.url),
        "unsubscribe": unsubscribe,
        "portal_url": _absolute("/"),
    }
    with translation.override(language):
        text = render_to_string("emails/notification.txt", context)
        html = render_to_string("emails/notification.html", context)
    headers = {"Message-ID": f"<notification-{notification.pk}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"}
    if unsubscribe:
        # RFC 8058 one-click: mail clients POST to it without a login.
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=notification.title, body=text, to=[user.email], headers=headers
    )
    message.attach_alternative(html, "text/html")
    return message


class TransientEmailError(Exception):
    def __init__(self, retry_in: float):
        super().__init__(f"retry in {retry_in:.0f}s")
        self.retry_in = retry_in


def backoff_ceiling(attempt: int) -> float:
    """The longest wait after failed attempt ``attempt``: 30 s, 60 s, 120 s
    ... capped at EMAIL_RETRY_MAX_DELAY."""
    return min(30 * 2 ** min(max(attempt - 1, 0), 30), settings.EMAIL_RETRY_MAX_DELAY)


def backoff_seconds(attempt: int) -> float:
    """Between half and all of the ceiling (jitter), so a recovering SMTP
    server is not hit by every retry at once."""
    return random.uniform(0.5, 1.0) * backoff_ceiling(attempt)  # noqa: S311


def email_max_attempts() -> int:
    """Attempts before an e-mail is given up: enough that even the shortest
    back-offs add up to EMAIL_RETRY_HOURS (about 200 with the defaults). A
    count rather than an age, so an operator's retry of a failed e-mail
    (which resets the count) gets the whole window again."""
    window = settings.EMAIL_RETRY_HOURS * 3600
    attempts, waited = 1, 0.0
    # The count is stored in a small integer column.
    while waited < window and attempts < MAX_ATTEMPTS_STORED:
        waited += backoff_ceiling(attempts) / 2
        attempts += 1
    return attempts


def notification_email_send(*, notification_id: int, now: datetime) -> bool:
    """Send one notification's email. True if this call sent it; False if it
    was not pending (already sent, being sent, skipped). Raises
    TransientEmailError when the caller should retry later."""
    claimed = Notification.objects.filter(
        pk=notification_id, email_status=EmailStatus.PENDING
    ).update(email_status=EmailStatus.SENDING, email_claimed_at=now)
    if claimed != 1:
        return False
    try:
        notification = Notification.objects.select_related("user__member", "subscriber").get(
            pk=notification_id
        )
    except (OperationalError, InterfaceError):
        # The database went away right after the claim: nothing was sent, so
        # give the row back (the relay sends it within minutes) instead of
        # leaving it "sending" for the whole lease.
        _record(notification_id, email_status=EmailStatus.PENDING, email_claimed_at=None)
        raise
    try:
        _email_for(notification).send()
    except Exception as exc:  # noqa: BLE001 - any SMTP/network failure is retried, then recorded
        attempts = notification.email_attempts + 1
        failed = attempts >= email_max_attempts()
        retry_in = backoff_seconds(attempts)
        _record(
            notification_id,
            email_status=EmailStatus.FAILED if failed else EmailStatus.PENDING,
            email_attempts=attempts,
            email_error=f"{type(exc).__name__}: {exc}"[:300],
            email_claimed_at=None,
            email_retry_at=None if failed else now + timedelta(seconds=retry_in),
        )
        logger.warning(
            "Email for notification %s failed (attempt %s)",
            notification_id,
            attempts,
            exc_info=True,
        )
        if failed:
            return False
        raise TransientEmailError(retry_in) from exc
    _record(
        notification_id,
        email_status=EmailStatus.SENT,
        emailed_at=now,
        email_attempts=notification.email_attempts + 1,
        email_retry_at=None,
    )
    return True


def _record(notification_id: int, **fields) -> None:
    """Record what a send did. Once the SMTP server has answered, losing the
    answer to a database restart would leave the row "sending", and after
    the lease a delivered e-mail would go out again: so the update is retried
    for up to RECORD_FOR (outside a transaction only; inside one the caller's
    transaction is lost anyway)."""
    deadline = time.monotonic() + RECORD_FOR.total_seconds()
    while True:
        try:
            Notification.objects.filter(pk=notification_id).update(**fields)
            return
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() > deadline:
                raise
            connection.close()  # the next try connects afresh
            time.sleep(1.0)


def notification_relay(*, now: datetime, limit: int = 5000) -> int:
    """The outbox relay: re-enqueue emails whose enqueue was lost (broker down
    at commit) or whose retry was lost (a countdown task waits in the worker
    that took it; if that worker dies, the broker returns the message only
    after its visibility timeout, hours later: found by the fault campaign),
    and reclaim those a dead worker left "sending". Enqueuing one twice is
    harmless: sending claims the row first."""
    Notification.objects.filter(
        email_status=EmailStatus.SENDING, email_claimed_at__lt=now - SENDING_LEASE
    ).update(email_status=EmailStatus.PENDING, email_claimed_at=None)
    # Never tried, or its next attempt is clearly overdue. Rows failed before
    # the next attempt was recorded (older versions) count from creation.
    overdue = now - RELAY_AFTER
    due = (
        Q(email_attempts=0, created_at__lt=overdue)
        | Q(email_attempts__gt=0, email_retry_at__lt=overdue)
        | Q(email_attempts__gt=0, email_retry_at__isnull=True, created_at__lt=overdue)
    )
    ids = list(
        Notification.objects.filter(due, email_status=EmailStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for start in range(0, len(ids), 500):
        enqueue_now("members.tasks.send_notification_emails", ids[start : start + 500])
    return len(ids)


def notification_retry_failed(*, ids: list[int], actor: User | None, now: datetime) -> int:
    """Send failed notification emails again (operators). Only rows still
    failed are reset, each reset is on the audit trail, and the emails are
    enqueued after commit. Returns how many were queued."""
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update()
            .filter(pk__in=ids, email_status=EmailStatus.FAILED)
            .order_by("pk")
        )
        Notification.objects.filter(pk__in=[n.pk for n in rows]).update(
            email_status=EmailStatus.PENDING, email_attempts=0, email_error="", email_retry_at=None
        )
        for row in rows:
            audit_record(
                row,
                changes={"email_status": [EmailStatus.FAILED, EmailStatus.PENDING]},
                actor=actor,
            )
        enqueue_emails([n.pk for n in rows])
    return len(rows)
