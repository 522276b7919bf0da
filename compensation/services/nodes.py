from datetime import datetime

from ..models import Node
from ..tokens import token_hash as _token_hash
from ..tokens import token_new, token_plausible

TOKEN_PREFIX = "kmn_"


def _new_token() -> str:
    return token_new(TOKEN_PREFIX)


def node_create(*, name: str, description: str = "", now: datetime) -> tuple[Node, str]:
    """Register a node. Returns the node and its token, which is shown once
    and stored only as a hash."""
    token = _new_token()
    node = Node(
        name=name,
        description=description,
        token_hash=_token_hash(token),
        token_prefix=token[:12],
        token_rotated_at=now,
    )
    node.full_clean()
    node.save()
    return node, token


def node_rotate_token(*, node: Node, now: datetime) -> str:
    """Issue a new token; the old one stops working at once. Also un-revokes."""
    token = _new_token()
    node.token_hash = _token_hash(token)
    node.token_prefix = token[:12]
    node.token_rotated_at = now
    node.revoked_at = None
    node.save(update_fields=["token_hash", "token_prefix", "token_rotated_at", "revoked_at"])
    return token


def node_update(*, node: Node, name: str, description: str) -> Node:
    """Rename or describe a node (its token is unchanged)."""
    node.name = name
    node.description = description
    node.full_clean()
    node.save(update_fields=["name", "description"])
    return node


def node_revoke(*, node: Node, now: datetime) -> None:
    if node.revoked_at is None:
        node.revoked_at = now
        node.save(update_fields=["revoked_at"])


def node_authenticate(*, token: str) -> Node | None:
    """The active node owning ``token``, or None (unknown or revoked)."""
    if not token_plausible(token, prefix=TOKEN_PREFIX):
        return None
    return Node.objects.filter(token_hash=_token_hash(token), revoked_at__isnull=True).first()
