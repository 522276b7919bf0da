"""Bearer tokens of machines (service nodes, billing platforms): random,
shown once, stored only as a SHA-256 so a database leak reveals none. The
prefix names the role, so one kind of token can never pass for the other."""

import hashlib
import secrets


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_new(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_plausible(token: str, *, prefix: str) -> bool:
    return bool(token) and token.startswith(prefix) and len(token) <= 100
