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

import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
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
        _record([notification_id], email_status=EmailStatus.PENDING, email_claimed_at=None)
        raise
    try:
        _email_for(notification).send()
    except Exception as exc:  # noqa: BLE001 - any SMTP/network failure is retried, then recorded
        retry_in = _record_failure(notification, exc, now=now)
        if retry_in is None:
            return False
        raise TransientEmailError(retry_in) from exc
    _record_sent([notification_id], now=now)
    return True


def _record_failure(notification: Notification, exc: Exception, *, now: datetime) -> float | None:
    """Record a failed attempt: pending again with its next attempt on
    record, or failed for good. Returns the back-off, None when given up."""
    attempts = notification.email_attempts + 1
    failed = attempts >= email_max_attempts()
    retry_in = backoff_seconds(attempts)
    _record(
        [notification.pk],
        email_status=EmailStatus.FAILED if failed else EmailStatus.PENDING,
        email_attempts=attempts,
        email_error=f"{type(exc).__name__}: {exc}"[:300],
        email_claimed_at=None,
        email_retry_at=None if failed else now + timedelta(seconds=retry_in),
    )
    logger.warning(
        "Email for notification %s failed (attempt %s)", notification.pk, attempts, exc_info=True
    )
    return None if failed else retry_in


def _record_sent(ids: list[int], *, now: datetime) -> None:
    if ids:
        _record(
            ids,
            email_status=EmailStatus.SENT,
            emailed_at=now,
            email_attempts=F("email_attempts") + 1,
            email_retry_at=None,
        )


# A batch stops after this many failed sends in a row: the server is down,
# and the rest wait for their own retry instead of each costing a timeout.
BATCH_FAILURES_IN_A_ROW = 2
# Sent e-mails are recorded in groups of this many: one UPDATE per group, and
# a worker killed mid-batch leaves at most this many "sending" that the relay
# sends again after the lease (their fixed Message-ID lets mail systems drop
# the duplicate), as a kill between send and record always could.
RECORD_SENT_EVERY = 100


@dataclass
class BatchOutcome:
    sent: list[int] = field(default_factory=list)
    # Failed attempts still to be retried, with their back-off in seconds.
    retry: dict[int, float] = field(default_factory=dict)
    # Claimed but not tried (the batch stopped): pending again, no attempt counted.
    released: list[int] = field(default_factory=list)


def _claim_many(ids: list[int], *, now: datetime) -> list[int]:
    """Claim the pending rows among ``ids`` (pending -> sending), in one
    short transaction. Rows another sender holds locked are skipped: that
    sender claims them (or finds them no longer pending)."""
    with transaction.atomic():
        claimed = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, email_status=EmailStatus.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if claimed:
            Notification.objects.filter(pk__in=claimed).update(
                email_status=EmailStatus.SENDING, email_claimed_at=now
            )
    return claimed


def notification_emails_send(*, notification_ids: list[int], now: datetime) -> BatchOutcome:
    """Send many notifications' emails over one SMTP connection, with the
    guarantees of ``notification_email_send``: only rows this call claimed
    (pending -> sending) are sent, each at most once per claim; a sent one is
    recorded "sent" (in groups), a failed one pending with its back-off (or
    failed for good), and when the batch stops early the untried rest is
    given back as pending without an attempt counted."""
    outcome = BatchOutcome()
    claimed = _claim_many(list(notification_ids), now=now)
    if not claimed:
        return outcome
    try:
        rows = list(
            Notification.objects.select_related("user__member", "subscriber")
            .filter(pk__in=claimed)
            .order_by("pk")
        )
    except (OperationalError, InterfaceError):
        _record(claimed, email_status=EmailStatus.PENDING, email_claimed_at=None)
        raise
    untried = {n.pk for n in rows}
    recorded = 0
    smtp = get_connection()
    failures_in_a_row = 0
    try:
        for notification in rows:
            untried.discard(notification.pk)
            try:
                message = _email_for(notification)
                # Opened here, not by send_messages (which closes a connection
                # it opened itself): one connection for the whole batch.
                # Both raise on failure (fail_silently is off).
                smtp.open()
                smtp.send_messages([message])
            except Exception as exc:  # noqa: BLE001 - any SMTP/network failure, as above
                retry_in = _record_failure(notification, exc, now=now)
                if retry_in is not None:
                    outcome.retry[notification.pk] = retry_in
                _close_quietly(smtp)  # the next send connects afresh
                failures_in_a_row += 1
                if failures_in_a_row >= BATCH_FAILURES_IN_A_ROW:
                    break
                continue
            failures_in_a_row = 0
            outcome.sent.append(notification.pk)
            if len(outcome.sent) - recorded >= RECORD_SENT_EVERY:
                _record_sent(outcome.sent[recorded:], now=now)
                recorded = len(outcome.sent)
    finally:
        # Also on an unexpected error: what went out is recorded sent, what
        # was never tried goes back to pending (the relay resends it).
        _close_quietly(smtp)
        _record_sent(outcome.sent[recorded:], now=now)
        if untried:
            outcome.released = sorted(untried)
            _record(outcome.released, email_status=EmailStatus.PENDING, email_claimed_at=None)
    return outcome


def _close_quietly(smtp) -> None:
    # Closing a broken connection may fail too; there is nothing left to do.
    with contextlib.suppress(Exception):
        smtp.close()


def _record(notification_ids: list[int], **fields) -> None:
    """Record what a send did. Once the SMTP server has answered, losing the
    answer to a database restart would leave the row "sending", and after
    the lease a delivered e-mail would go out again: so the update is retried
    for up to RECORD_FOR (outside a transaction only; inside one the caller's
    transaction is lost anyway)."""
    deadline = time.monotonic() + RECORD_FOR.total_seconds()
    while True:
        try:
            Notification.objects.filter(pk__in=notification_ids).update(**fields)
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
