"""The member's side of notifications: the inbox and the channel
preferences (email, inbox) per kind."""

from __future__ import annotations

import logging
from datetime import datetime

from ..models import (
    ALWAYS_EMAILED,
    Notification,
    NotificationKind,
    NotificationPreference,
    User,
)
from .notify import channels_for

logger = logging.getLogger(__name__)


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
    # A staff answer to the member's own support request (every e-mail of a
    # kind carries a "stop" link, so the kind must be here to turn it back on).
    NotificationKind.SUPPORT_REPLY,
    NotificationKind.INCIDENT_DECLARED,
    NotificationKind.INCIDENT_RESOLVED,
    NotificationKind.STATUS_NOTICE,
    NotificationKind.NODE_DEGRADED,
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
