"""Recording notifications: every part of the portal tells people things
through ``notify_many`` (or ``notify_broadcast`` for one notice to many).

- A notification is recorded in the caller's transaction (so a rolled-back
  action tells nobody) and emailed by Celery only after commit.
- The table is the outbox: if the broker is down at commit, the relay
  (members.services.delivery.notification_relay, on beat) enqueues it again.
- Channels follow the member's preferences; security notices always go by email.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone as djtz
from django.utils import translation

from kamen_portal.bulk import copy_insert
from kamen_portal.queue import enqueue_on_commit

from ..models import (
    ALWAYS_EMAILED,
    DEFAULT_CHANNELS,
    EmailStatus,
    EmailSubscriber,
    MemberProfile,
    Notification,
    NotificationPreference,
)

logger = logging.getLogger(__name__)


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


def render_all(render, language: str) -> tuple[tuple, dict]:
    """``render()`` in the recipient's ``language`` (for the email and the
    stored title) and in every interface language (for the inbox, which
    follows the reader's current language)."""
    texts = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            title, body, url = render()
            texts[code] = [str(title)[:200], str(body)]
    if language not in texts:
        with translation.override(language):
            title, body, url = render()
            texts[language] = [str(title)[:200], str(body)]
    title, body = texts[language]
    return (title, body, url), texts


def _row(
    *, user_id: int, kind: str, key: str, text: tuple, texts: dict, prefs: dict, now: datetime
) -> Notification:
    title, body, url = text
    email, inbox = channels_for(user_id, kind, prefs)
    return Notification(
        user_id=user_id,
        kind=kind,
        dedupe_key=key[:120],
        title=str(title)[:200],
        body=str(body),
        texts=texts,
        url=url,
        created_at=now,
        in_inbox=inbox,
        email_status=EmailStatus.PENDING if email else EmailStatus.SKIPPED,
    )


def _insert(rows: list[Notification]) -> list[int]:
    """Insert ``rows``, skipping any whose ``dedupe_key`` exists, and return
    the ids of the e-mails to send. On PostgreSQL by COPY (see
    kamen_portal.bulk): the pending rows inserted now; an earlier row
    still pending is the relay's to send if its own enqueue was lost."""
    inserted = copy_insert(rows, ignore_conflicts=True)
    if all(r.pk is not None for r in inserted):
        return [r.pk for r in inserted if r.email_status == EmailStatus.PENDING]
    # bulk_create (SQLite) does not tell which rows a conflict skipped.
    return list(
        Notification.objects.filter(
            dedupe_key__in=[r.dedupe_key for r in rows if r.email_status == EmailStatus.PENDING],
            email_status=EmailStatus.PENDING,
        ).values_list("pk", flat=True)
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
        text, texts = render_all(message.render, languages.get(user_id, settings.LANGUAGE_CODE))
        rows.append(
            _row(
                user_id=user_id,
                kind=message.kind,
                key=message.dedupe_key,
                text=text,
                texts=texts,
                prefs=prefs,
                now=now,
            )
        )
    enqueue_emails(_insert(rows))
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
            rendered[language] = render_all(render, language)
        text, texts = rendered[language]
        rows.append(
            _row(
                user_id=user_id,
                kind=kind,
                key=f"{key_prefix}:{user_id}",
                text=text,
                texts=texts,
                prefs=prefs,
                now=now,
            )
        )
    enqueue_emails(_insert(rows))
    return len(rows)


def subscriber_user_ids(*, kind: str) -> list[int]:
    """Active accounts that opted in to ``kind`` (a kind whose default is
    off, like status notices) by email or in the inbox."""
    return list(
        NotificationPreference.objects.filter(kind=kind, user__is_active=True)
        .filter(Q(email=True) | Q(inbox=True))
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


SUBSCRIBER_CHUNK = 5000


def notify_subscribers(
    *, kind: str, key_prefix: str, render, now: datetime, exclude_user_ids=()
) -> int:
    """One notice to everyone subscribed to ``kind``, in chunks of one
    transaction each (deduplicated, so safe to run again)."""
    excluded = set(exclude_user_ids)
    user_ids = [u for u in subscriber_user_ids(kind=kind) if u not in excluded]
    recorded = 0
    for start in range(0, len(user_ids), SUBSCRIBER_CHUNK):
        with transaction.atomic():
            recorded += notify_broadcast(
                user_ids=user_ids[start : start + SUBSCRIBER_CHUNK],
                kind=kind,
                key_prefix=key_prefix,
                render=render,
                now=now,
            )
    return recorded + _notify_email_subscribers(
        kind=kind, key_prefix=key_prefix, render=render, now=now
    )


def _notify_email_subscribers(*, kind: str, key_prefix: str, render, now: datetime) -> int:
    """The same notice to the confirmed subscribers without an account:
    email only, in the language they asked in, deduplicated like the rest."""
    subscribers = list(
        EmailSubscriber.objects.filter(
            kind=kind, confirmed_at__isnull=False, unsubscribed_at__isnull=True
        )
        .order_by("pk")
        .values_list("pk", "language")
    )
    rendered: dict[str, tuple] = {}
    recorded = 0
    for start in range(0, len(subscribers), SUBSCRIBER_CHUNK):
        rows = []
        for subscriber_id, language in subscribers[start : start + SUBSCRIBER_CHUNK]:
            if language not in rendered:
                rendered[language] = render_all(render, language)
            (title, body, url), texts = rendered[language]
            rows.append(
                Notification(
                    subscriber_id=subscriber_id,
                    kind=kind,
                    dedupe_key=f"{key_prefix}:s{subscriber_id}"[:120],
                    title=str(title)[:200],
                    body=str(body),
                    texts=texts,
                    url=url,
                    created_at=now,
                    in_inbox=False,
                    email_status=EmailStatus.PENDING,
                )
            )
        with transaction.atomic():
            enqueue_emails(_insert(rows))
        recorded += len(rows)
    return recorded
