"""Billing platforms and their tokens: the same mechanism as node tokens
(compensation/tokens.py), with their own prefix, so a node token is never a
platform token and the reverse."""

from datetime import datetime

from ..models import Platform
from ..tokens import token_hash, token_new, token_plausible

PLATFORM_TOKEN_PREFIX = "kmp_"


def platform_create(*, name: str, now: datetime) -> tuple[Platform, str]:
    """Register a platform. Returns it and its token, shown once."""
    token = token_new(PLATFORM_TOKEN_PREFIX)
    platform = Platform(
        name=name, token_hash=token_hash(token), token_prefix=token[:12], token_rotated_at=now
    )
    platform.full_clean()
    platform.save()
    return platform, token


def platform_rotate_token(*, platform: Platform, now: datetime) -> str:
    """Issue a new token; the old one stops working at once. Also un-revokes."""
    token = token_new(PLATFORM_TOKEN_PREFIX)
    platform.token_hash = token_hash(token)
    platform.token_prefix = token[:12]
    platform.token_rotated_at = now
    platform.revoked_at = None
    platform.save(update_fields=["token_hash", "token_prefix", "token_rotated_at", "revoked_at"])
    return token


def platform_revoke(*, platform: Platform, now: datetime) -> None:
    if platform.revoked_at is None:
        platform.revoked_at = now
        platform.save(update_fields=["revoked_at"])


def platform_authenticate(*, token: str) -> Platform | None:
    """The active platform owning ``token``, or None (unknown or revoked)."""
    if not token_plausible(token, prefix=PLATFORM_TOKEN_PREFIX):
        return None
    return Platform.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True).first()
