"""Accounts and member profiles."""

import secrets
from datetime import datetime

from django.db import IntegrityError, transaction

from ..models import MemberProfile, MemberStatus, Tier, User

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
