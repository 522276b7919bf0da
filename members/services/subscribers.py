"""Email subscriptions without an account (the status page's updates).

Statuspage's model: anybody may ask; nothing is sent to the address but the
confirmation link until its owner follows it (double opt-in); every notice
carries a signed link (and List-Unsubscribe) that ends the subscription in
one click. Asking is rate-limited per address and per client address, and
the answer never tells whether an address was already subscribed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from kamen_portal.cache import counter_hit

from ..models import EmailSubscriber, Notification, NotificationKind
from .notify import enqueue_emails, render_all

logger = logging.getLogger(__name__)

CONFIRM_SALT = "kamen.subscribers.confirm"
UNSUBSCRIBE_SALT = "kamen.subscribers.unsubscribe"
CONFIRM_MAX_AGE = timedelta(days=7)
# One confirmation e-mail per address per this long; this many requests
# per client address per hour.
RESEND_AFTER = timedelta(minutes=10)
PER_CLIENT_PER_HOUR = 10
SUBSCRIBABLE = frozenset({NotificationKind.STATUS_NOTICE})


class SubscriptionError(Exception):
    def __init__(self, code: str, message: str, *, status: int = 400, retry_after: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


def confirm_token(subscriber: EmailSubscriber) -> str:
    return signing.dumps({"s": str(subscriber.public_id)}, salt=CONFIRM_SALT, compress=True)


def unsubscribe_token(subscriber: EmailSubscriber) -> str:
    return signing.dumps({"s": str(subscriber.public_id)}, salt=UNSUBSCRIBE_SALT, compress=True)


def _read(token: str, *, salt: str, max_age: timedelta | None = None) -> EmailSubscriber | None:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), str):
        return None
    try:
        return EmailSubscriber.objects.filter(public_id=data["s"]).first()
    except ValidationError:
        return None


def _throttle(key: str, *, limit: int, seconds: int) -> bool:
    """True when ``key`` has been used ``limit`` times in ``seconds``. Fails
    closed: without the cache nobody can flood an inbox through us."""
    try:
        return counter_hit(key, ttl=seconds) > limit
    except Exception:  # noqa: BLE001 - any cache failure: refuse, see above
        logger.warning("subscription throttle unavailable", exc_info=True)
        return True


def subscriber_request(
    *, email: str, kind: str, language: str, client_ip: str, now: datetime
) -> EmailSubscriber | None:
    """Ask for ``kind`` by email: record (or refresh) a pending subscriber
    and send the confirmation link through the notification outbox. An
    address already confirmed gets nothing new (and the caller's answer is
    the same). Raises SubscriptionError invalid_email or rate_limited."""
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise SubscriptionError(
            "invalid_email", _("Enter a valid email address, e.g. name@example.com.")
        ) from None
    if kind not in SUBSCRIBABLE:
        raise SubscriptionError("invalid_kind", _("This kind of notice cannot be subscribed to."))
    local, _at, domain = email.rpartition("@")
    email = f"{local}@{domain.lower()}"
    too_many = _("Too many subscription requests. Try again in a few minutes.")
    if _throttle(f"subscribe:ip:{client_ip or 'unknown'}", limit=PER_CLIENT_PER_HOUR, seconds=3600):
        raise SubscriptionError("rate_limited", too_many, status=429, retry_after=3600)
    with transaction.atomic():
        try:
            with transaction.atomic():
                subscriber, _created = EmailSubscriber.objects.get_or_create(
                    email__iexact=email,
                    kind=kind,
                    defaults={"email": email, "language": language, "created_at": now},
                )
        except IntegrityError:  # the same address asked twice at once
            subscriber = EmailSubscriber.objects.get(email__iexact=email, kind=kind)
        subscriber = EmailSubscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.is_active:
            return subscriber
        if subscriber.confirm_sent_at and subscriber.confirm_sent_at > now - RESEND_AFTER:
            wait = int((subscriber.confirm_sent_at + RESEND_AFTER - now).total_seconds())
            raise SubscriptionError("rate_limited", too_many, status=429, retry_after=max(wait, 1))
        subscriber.language = language
        subscriber.confirm_sent_at = now
        subscriber.save(update_fields=["language", "confirm_sent_at"])
        _record_confirmation(subscriber, now=now)
    return subscriber


def _record_confirmation(subscriber: EmailSubscriber, *, now: datetime) -> None:
    link = reverse("members:subscriber-confirm", kwargs={"token": confirm_token(subscriber)})

    def render():
        return (
            _("Confirm your subscription to status updates"),
            _(
                "Someone, probably you, asked for the service status updates of "
                "the Kamen member portal at this address. Follow the link to "
                "confirm; if it was not you, ignore this email and nothing more "
                "will be sent. The link works for 7 days."
            ),
            link,
        )

    (title, body, url), texts = render_all(render, subscriber.language)
    row = Notification.objects.create(
        subscriber=subscriber,
        kind=NotificationKind.SUBSCRIPTION_CONFIRM,
        dedupe_key=f"subscribe-confirm:{subscriber.pk}:{now.timestamp():.0f}"[:120],
        title=title,
        body=body,
        texts=texts,
        url=url,
        created_at=now,
        in_inbox=False,
    )
    enqueue_emails([row.pk])


def subscriber_confirm(*, token: str, now: datetime) -> EmailSubscriber | None:
    """Confirm the address behind a confirmation link (idempotent); None
    for a link that is forged, expired or of a removed subscriber."""
    subscriber = _read(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    if subscriber is None:
        return None
    EmailSubscriber.objects.filter(pk=subscriber.pk, confirmed_at__isnull=True).update(
        confirmed_at=now
    )
    # Following a fresh confirmation link after unsubscribing subscribes again.
    EmailSubscriber.objects.filter(pk=subscriber.pk).update(unsubscribed_at=None)
    subscriber.refresh_from_db()
    return subscriber


def subscriber_confirm_check(token: str) -> EmailSubscriber | None:
    """The subscriber a genuine, unexpired confirmation link names."""
    return _read(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)


def subscriber_from_unsubscribe_token(token: str) -> EmailSubscriber | None:
    return _read(token, salt=UNSUBSCRIBE_SALT)


def subscriber_unsubscribe(*, token: str, now: datetime) -> EmailSubscriber | None:
    """End the subscription behind a signed unsubscribe link (idempotent)."""
    subscriber = _read(token, salt=UNSUBSCRIBE_SALT)
    if subscriber is None:
        return None
    EmailSubscriber.objects.filter(pk=subscriber.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=now
    )
    subscriber.refresh_from_db()
    return subscriber
