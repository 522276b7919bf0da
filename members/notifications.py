"""The notification seam: every part of the portal tells members things
through ``notify_many``. (The notifications issue grows this into preferences,
digests and an outbox relay; callers keep calling the same function.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import translation

from kamen_portal.queue import enqueue_on_commit

from .models import EmailStatus, MemberProfile, Notification

logger = logging.getLogger(__name__)


@dataclass
class Message:
    member_id: int
    kind: str
    dedupe_key: str
    # Called with the member's language active; returns (title, body, url).
    render: object


def notify_many(*, messages: list[Message], now: datetime) -> list[Notification]:
    """Record the messages (in the caller's transaction) and email them after
    commit. A message whose ``dedupe_key`` exists already is skipped."""
    if not messages:
        return []
    profiles = {
        p.pk: p
        for p in MemberProfile.objects.filter(
            pk__in={m.member_id for m in messages}
        ).select_related("user")
    }
    rows = []
    for message in messages:
        profile = profiles.get(message.member_id)
        if profile is None:
            continue
        with translation.override(profile.language):
            title, body, url = message.render()
        rows.append(
            Notification(
                user_id=profile.user_id,
                kind=message.kind,
                dedupe_key=message.dedupe_key,
                title=str(title)[:200],
                body=str(body),
                url=url,
                created_at=now,
            )
        )
    created = Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    keys = [r.dedupe_key for r in created]
    ids = list(
        Notification.objects.filter(
            dedupe_key__in=keys, email_status=EmailStatus.PENDING
        ).values_list("pk", flat=True)
    )
    if ids:
        from .tasks import send_notification_emails

        for start in range(0, len(ids), 500):
            enqueue_on_commit(send_notification_emails, ids[start : start + 500])
    return created


def notification_email_send(*, notification_id: int, now: datetime) -> bool:
    """Send one notification's email at most once: the pending -> sending
    claim must change exactly one row, so a second run finds nothing to do."""
    claimed = Notification.objects.filter(
        pk=notification_id, email_status=EmailStatus.PENDING
    ).update(email_status=EmailStatus.SENDING)
    if claimed != 1:
        return False
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    link = f"{settings.PORTAL_BASE_URL.rstrip('/')}{notification.url}" if notification.url else ""
    try:
        send_mail(
            subject=notification.title,
            message=f"{notification.body}\n\n{link}".strip(),
            from_email=None,
            recipient_list=[notification.user.email],
        )
    except Exception:
        # Back to pending so a retry can claim it again; the SMTP retry policy
        # with backoff and a final failed state is the notifications issue's.
        logger.warning("Email for notification %s failed", notification_id, exc_info=True)
        Notification.objects.filter(pk=notification_id).update(email_status=EmailStatus.PENDING)
        raise
    with transaction.atomic():
        Notification.objects.filter(pk=notification_id).update(
            email_status=EmailStatus.SENT, emailed_at=now
        )
    return True
