"""The notification service: every part of the portal tells people things
through ``notify_many``.

- A notification is recorded in the caller's transaction (so a rolled-back
  action tells nobody) and emailed by Celery only after commit.
- The table is the outbox: if the broker is down at commit, the relay
  (``notification_relay``, on beat) finds pending emails and enqueues them.
- Each email goes out at most once per successful claim: a pending -> sending
  update that must change exactly one row. A worker that dies mid-send leaves
  the row "sending"; the relay reclaims it after a lease, and the fixed
  Message-ID lets mail systems drop the rare duplicate.
- SMTP failures retry with exponential backoff and jitter, then end "failed"
  with the error kept, visible to operators.
- Channels follow the member's preferences; security notices always go by email.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from kamen_portal.queue import enqueue_now, enqueue_on_commit

from .models import (
    ALWAYS_EMAILED,
    DEFAULT_CHANNELS,
    EmailStatus,
    MemberProfile,
    Notification,
    NotificationKind,
    NotificationPreference,
    User,
)

logger = logging.getLogger(__name__)

MAX_EMAIL_ATTEMPTS = 5
# A claim older than this belongs to a worker that died mid-send.
SENDING_LEASE = timedelta(minutes=10)
# Pending this long without being sent: the enqueue after commit was lost.
RELAY_AFTER = timedelta(minutes=1)
UNSUBSCRIBE_SALT = "kamen.notifications.unsubscribe"


@dataclass
class Message:
    kind: str
    dedupe_key: str
    # Called with the recipient's language active; returns (title, body, url).
    render: object
    member_id: int | None = None
    user_id: int | None = None
    extra: dict = field(default_factory=dict)


def local_time(value: datetime, tz: str | None = None) -> str:
    """A time as members read it in notices: their zone, minute precision."""
    import zoneinfo

    from django.utils import timezone as djtz

    return djtz.localtime(value, zoneinfo.ZoneInfo(tz or settings.TIME_ZONE)).strftime(
        "%Y-%m-%d %H:%M"
    )


def channels_for(
    user_id: int, kind: str, prefs: dict[tuple[int, str], tuple[bool, bool]]
) -> tuple[bool, bool]:
    email, inbox = prefs.get((user_id, kind), DEFAULT_CHANNELS.get(kind, (True, True)))
    if kind in ALWAYS_EMAILED:
        email = True
    return email, inbox


def _row(
    *, user_id: int, kind: str, key: str, text: tuple, prefs: dict, now: datetime
) -> Notification:
    title, body, url = text
    email, inbox = channels_for(user_id, kind, prefs)
    return Notification(
        user_id=user_id,
        kind=kind,
        dedupe_key=key[:120],
        title=str(title)[:200],
        body=str(body),
        url=url,
        created_at=now,
        in_inbox=inbox,
        email_status=EmailStatus.PENDING if email else EmailStatus.SKIPPED,
    )


def enqueue_emails(ids: list[int]) -> None:
    """Email the recorded notifications after commit, 500 per task."""
    for start in range(0, len(ids), 500):
        enqueue_on_commit("members.tasks.send_notification_emails", ids[start : start + 500])


def notify_many(*, messages: list[Message], now: datetime) -> list[Notification]:
    """Record ``messages`` in the caller's transaction; email after commit.
    A message whose ``dedupe_key`` exists already is not recorded again."""
    if not messages:
        return []
    member_ids = {m.member_id for m in messages if m.member_id is not None}
    profiles = {
        p.pk: p
        for p in MemberProfile.objects.filter(pk__in=member_ids).only("pk", "user_id", "language")
    }
    user_ids = {m.user_id for m in messages if m.user_id is not None} | {
        p.user_id for p in profiles.values()
    }
    languages = dict(
        MemberProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "language")
    )
    prefs = {
        (p.user_id, p.kind): (p.email, p.inbox)
        for p in NotificationPreference.objects.filter(
            user_id__in=user_ids, kind__in={m.kind for m in messages}
        )
    }
    rows = []
    for message in messages:
        user_id = message.user_id
        if user_id is None:
            profile = profiles.get(message.member_id)
            if profile is None:
                continue
            user_id = profile.user_id
        with translation.override(languages.get(user_id, settings.LANGUAGE_CODE)):
            text = message.render()
        rows.append(
            _row(
                user_id=user_id,
                kind=message.kind,
                key=message.dedupe_key,
                text=text,
                prefs=prefs,
                now=now,
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    enqueue_emails(
        list(
            Notification.objects.filter(
                dedupe_key__in=[
                    r.dedupe_key for r in rows if r.email_status == EmailStatus.PENDING
                ],
                email_status=EmailStatus.PENDING,
            ).values_list("pk", flat=True)
        )
    )
    return rows


def notify_broadcast(
    *, user_ids: list[int], kind: str, key_prefix: str, render, now: datetime
) -> int:
    """One notice to many people (an incident to everyone it affects): the
    text is rendered once per language, rows are inserted in bulk, and emails
    are enqueued in batches after commit. Returns the rows recorded."""
    if not user_ids:
        return 0
    languages = dict(
        MemberProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "language")
    )
    prefs = {
        (p.user_id, p.kind): (p.email, p.inbox)
        for p in NotificationPreference.objects.filter(user_id__in=user_ids, kind=kind)
    }
    rendered: dict[str, tuple] = {}
    rows = []
    for user_id in user_ids:
        language = languages.get(user_id, settings.LANGUAGE_CODE)
        if language not in rendered:
            with translation.override(language):
                rendered[language] = tuple(str(part) for part in render())
        rows.append(
            _row(
                user_id=user_id,
                kind=kind,
                key=f"{key_prefix}:{user_id}",
                text=rendered[language],
                prefs=prefs,
                now=now,
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
    enqueue_emails(
        list(
            Notification.objects.filter(
                user_id__in=user_ids,
                kind=kind,
                dedupe_key__startswith=f"{key_prefix}:",
                email_status=EmailStatus.PENDING,
            ).values_list("pk", flat=True)
        )
    )
    return len(rows)


# --- email ------------------------------------------------------------------------


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
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}" if path else ""


def _email_for(notification: Notification) -> EmailMultiAlternatives:
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


def backoff_seconds(attempt: int) -> float:
    """30 s, 60 s, 120 s ... capped at one hour, with full jitter so a
    recovering SMTP server is not hit by every retry at once."""
    return random.uniform(0.5, 1.0) * min(30 * 2 ** max(attempt - 1, 0), 3600)  # noqa: S311


def notification_email_send(*, notification_id: int, now: datetime) -> bool:
    """Send one notification's email. True if this call sent it; False if it
    was not pending (already sent, being sent, skipped). Raises
    TransientEmailError when the caller should retry later."""
    claimed = Notification.objects.filter(
        pk=notification_id, email_status=EmailStatus.PENDING
    ).update(email_status=EmailStatus.SENDING, email_claimed_at=now)
    if claimed != 1:
        return False
    notification = Notification.objects.select_related("user__member").get(pk=notification_id)
    try:
        _email_for(notification).send()
    except Exception as exc:  # noqa: BLE001 - any SMTP/network failure is retried, then recorded
        attempts = notification.email_attempts + 1
        failed = attempts >= MAX_EMAIL_ATTEMPTS
        Notification.objects.filter(pk=notification_id).update(
            email_status=EmailStatus.FAILED if failed else EmailStatus.PENDING,
            email_attempts=attempts,
            email_error=f"{type(exc).__name__}: {exc}"[:300],
            email_claimed_at=None,
        )
        logger.warning(
            "Email for notification %s failed (attempt %s)",
            notification_id,
            attempts,
            exc_info=True,
        )
        if failed:
            return False
        raise TransientEmailError(backoff_seconds(attempts)) from exc
    with transaction.atomic():
        Notification.objects.filter(pk=notification_id).update(
            email_status=EmailStatus.SENT,
            emailed_at=now,
            email_attempts=notification.email_attempts + 1,
        )
    return True


def notification_relay(*, now: datetime, limit: int = 5000) -> int:
    """The outbox relay: re-enqueue emails whose enqueue was lost (broker down
    at commit) and reclaim those a dead worker left "sending"."""
    Notification.objects.filter(
        email_status=EmailStatus.SENDING, email_claimed_at__lt=now - SENDING_LEASE
    ).update(email_status=EmailStatus.PENDING, email_claimed_at=None)
    ids = list(
        Notification.objects.filter(
            email_status=EmailStatus.PENDING,
            email_attempts=0,
            created_at__lt=now - RELAY_AFTER,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for start in range(0, len(ids), 500):
        enqueue_now("members.tasks.send_notification_emails", ids[start : start + 500])
    return len(ids)


# --- inbox and preferences -------------------------------------------------------


def inbox_mark_read(*, user: User, notification_id: int | None, now: datetime) -> int:
    """Mark one (or, with None, every) inbox notification of ``user`` read."""
    rows = Notification.objects.filter(user=user, in_inbox=True, read_at__isnull=True)
    if notification_id is not None:
        rows = rows.filter(pk=notification_id)
    return rows.update(read_at=now)


# Kinds a member can tune, in the order the settings page shows them.
MEMBER_KINDS = [
    NotificationKind.DISCONNECT_DETECTED,
    NotificationKind.CREDITED,
    NotificationKind.COUPON_ISSUED,
    NotificationKind.APPEAL_WINDOW_CLOSING,
    NotificationKind.APPEAL_RECEIVED,
    NotificationKind.APPEAL_INFO_REQUESTED,
    NotificationKind.APPEAL_DECIDED,
    NotificationKind.APPEAL_ESCALATED,
    NotificationKind.INCIDENT_DECLARED,
    NotificationKind.INCIDENT_RESOLVED,
    NotificationKind.EXPORT_READY,
    NotificationKind.SECURITY,
]


def preferences_for(*, user: User) -> list[dict]:
    chosen = {p.kind: (p.email, p.inbox) for p in NotificationPreference.objects.filter(user=user)}
    rows = []
    for kind in MEMBER_KINDS:
        email, inbox = channels_for(user.pk, kind, {(user.pk, k): v for k, v in chosen.items()})
        rows.append(
            {
                "kind": kind,
                "label": NotificationKind(kind).label,
                "email": email,
                "inbox": inbox,
                "email_locked": kind in ALWAYS_EMAILED,
            }
        )
    return rows


def preferences_set(
    *, user: User, kind: str, email: bool | None = None, inbox: bool | None = None
) -> None:
    if kind not in NotificationKind.values:
        raise ValueError(kind)
    current_email, current_inbox = channels_for(user.pk, kind, {})
    existing = NotificationPreference.objects.filter(user=user, kind=kind).first()
    if existing is not None:
        current_email, current_inbox = existing.email, existing.inbox
    NotificationPreference.objects.update_or_create(
        user=user,
        kind=kind,
        defaults={
            "email": current_email
            if email is None
            else (True if kind in ALWAYS_EMAILED else email),
            "inbox": current_inbox if inbox is None else inbox,
        },
    )
