"""Integration tokens: read access to the event feed for billing, CRM or a
data warehouse. Like node tokens, shown once and stored as a SHA-256 hash;
a token of their own because a node (which only needs entitlements) must not
read every member's history, and the platform's write token (inbound events)
must not double as a read credential."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from ..models import IntegrationToken

TOKEN_PREFIX = "kmi_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def integration_token_create(
    *, name: str, description: str = "", now: datetime
) -> tuple[IntegrationToken, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = IntegrationToken(
        name=name,
        description=description,
        token_hash=_hash(token),
        token_prefix=token[:12],
        created_at=now,
    )
    row.full_clean()
    row.save()
    return row, token


def integration_token_revoke(*, token: IntegrationToken, now: datetime) -> bool:
    return bool(
        IntegrationToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    )


def integration_token_authenticate(*, token: str) -> IntegrationToken | None:
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    return IntegrationToken.objects.filter(token_hash=_hash(token), revoked_at__isnull=True).first()
