"""Accounts and member profiles."""

import secrets

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
    language: str = "zh-hans",
    timezone_name: str = "Asia/Shanghai",
) -> MemberProfile:
    """Give ``user`` a member profile with a unique random member number.

    Collisions on the member number are retried inside a savepoint, so the
    caller's transaction survives them. The profile starts without time:
    time comes only through the ledger (compensation.services.memberships).
    """
    for _attempt in range(_MEMBER_NO_ATTEMPTS):
        try:
            with transaction.atomic():
                return MemberProfile.objects.create(
                    user=user,
                    member_no=_random_member_no(),
                    tier=tier,
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


def member_language_on_sign_in(*, profile: MemberProfile, chosen: str | None) -> str:
    """The language a member reads in after signing in: the one they chose
    on the page before signing in (kept on the account from now on), or the
    account's when they chose none."""
    if chosen:
        member_set_language(profile=profile, language=chosen)
        return chosen
    return profile.language


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


def account_create_pending(*, email: str) -> tuple[User, bool]:
    """The account of ``email``, created for a member the billing platform
    knows and the portal does not yet: no usable password and an unverified
    address, so it waits for its owner's first sign-in (they set a password
    through "forgot password", which proves the address). Returns (user,
    created); an existing account is returned as it is."""
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=None)
    except IntegrityError:
        return User.objects.get(email__iexact=email), False
    EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": False, "primary": True}
    )
    return user, True
