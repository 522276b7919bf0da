import secrets
from datetime import datetime

from django.db import IntegrityError, transaction

from .audit import audit_record
from .models import EmailStatus, MemberProfile, MemberStatus, Notification, Tier, User
from .notifications import enqueue_emails

_MEMBER_NO_ATTEMPTS = 20


def _random_member_no() -> str:
    # Random, not sequential: a member number must not reveal how many members
    # there are or let anyone guess a neighbour's number.
    return f"KM{secrets.randbelow(10**8):08d}"


def member_profile_create(
    *,
    user: User,
    tier: str = Tier.BASIC,
    expires_at: datetime | None = None,
    language: str = "zh-hans",
    timezone_name: str = "Asia/Shanghai",
) -> MemberProfile:
    """Give ``user`` a member profile with a unique random member number.

    Collisions on the member number are retried inside a savepoint, so the
    caller's transaction survives them.
    """
    for _attempt in range(_MEMBER_NO_ATTEMPTS):
        try:
            with transaction.atomic():
                return MemberProfile.objects.create(
                    user=user,
                    member_no=_random_member_no(),
                    tier=tier,
                    expires_at=expires_at,
                    status=MemberStatus.ACTIVE,
                    language=language,
                    timezone=timezone_name,
                )
        except IntegrityError:
            if MemberProfile.objects.filter(user=user).exists():
                return user.member
    raise RuntimeError("Could not allocate a unique member number.")


def member_set_language(*, profile: MemberProfile, language: str) -> None:
    if profile.language != language:
        profile.language = language
        profile.save(update_fields=["language"])


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
            email_status=EmailStatus.PENDING, email_attempts=0, email_error=""
        )
        for row in rows:
            audit_record(
                row,
                changes={"email_status": [EmailStatus.FAILED, EmailStatus.PENDING]},
                actor=actor,
            )
        enqueue_emails([n.pk for n in rows])
    return len(rows)
