"""Accounts and member profiles."""

import secrets
from datetime import datetime

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
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


def account_ensure(
    *, email: str, password: str, is_staff: bool = False, groups: tuple[str, ...] = ()
) -> User:
    """Create the account ``email`` (verified) or reset it to ``password``
    and the given role: the demo seed and operators' scripts use it, and
    running it again changes nothing else."""
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, is_staff=is_staff)
    else:
        user.set_password(password)
        user.is_staff = is_staff
        user.is_active = True
        user.save(update_fields=["password", "is_staff", "is_active"])
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    if groups:
        user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def membership_start(*, profile: MemberProfile, tier: str, expires_at: datetime) -> bool:
    """Give a member who never had a paid membership their first period.
    Only a profile without an expiry qualifies: from then on membership time
    changes through the ledger alone (its first entry starts from here).
    Returns whether it started one."""
    updated = MemberProfile.objects.filter(pk=profile.pk, expires_at__isnull=True).update(
        tier=tier, expires_at=expires_at
    )
    if updated:
        profile.refresh_from_db(fields=["tier", "expires_at"])
    return bool(updated)
