"""Webhook signatures (no Django): what docs/integration.md tells receivers.

``Kamen-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256(secret, "<t>." + raw body). Receivers recompute it over the raw
bytes they got, compare in constant time and refuse a ``t`` further than
``REPLAY_WINDOW_SECONDS`` from their clock (a captured request cannot be
replayed later). Several ``v1`` values may appear while a secret is rolled.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Kamen-Signature"
REPLAY_WINDOW_SECONDS = 300


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret=secret, timestamp=timestamp, body=body)}"


def verify(
    *, secret: str, header: str, body: bytes, now: float, window: int = REPLAY_WINDOW_SECONDS
) -> bool:
    """True when ``header`` carries a valid v1 signature of ``body`` made
    within ``window`` seconds of ``now`` (the reference receiver)."""
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > window:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
