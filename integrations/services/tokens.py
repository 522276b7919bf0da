"""Integration tokens: read access to the event feed for billing, CRM or a
data warehouse. Like node tokens, shown once and stored as a SHA-256 hash;
a token of their own because a node (which only needs entitlements) must not
read every member's history, and the platform's write token (inbound events)
must not double as a read credential."""

from __future__ import annotations

from datetime import datetime

from compensation.tokens import token_hash, token_new, token_plausible
from members.audit import audit_record

from ..models import IntegrationToken

TOKEN_PREFIX = "kmi_"


def integration_token_create(
    *, name: str, description: str = "", now: datetime
) -> tuple[IntegrationToken, str]:
    token = token_new(TOKEN_PREFIX)
    row = IntegrationToken(
        name=name,
        description=description,
        token_hash=token_hash(token),
        token_prefix=token[:12],
        created_at=now,
    )
    row.full_clean()
    row.save()
    return row, token


def integration_token_revoke(*, token: IntegrationToken, now: datetime) -> bool:
    revoked = bool(
        IntegrationToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    )
    if revoked:
        audit_record(token, changes={"revoked_at": [None, now.isoformat()]})
    return revoked


def integration_token_authenticate(*, token: str) -> IntegrationToken | None:
    if not token_plausible(token, prefix=TOKEN_PREFIX):
        return None
    return IntegrationToken.objects.filter(
        token_hash=token_hash(token), revoked_at__isnull=True
    ).first()
