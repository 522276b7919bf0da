"""A log built with the portal's own code (compensation.tlog, tlog_notes,
ledger.canonical) and receipts shaped as compensation.receipts makes them."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

from compensation import tlog
from compensation.ledger import canonical
from compensation.tlog_notes import Checkpoint, Signer, sign_checkpoint

ORIGIN = "portal.example.com/ledger"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def body(seq: int, *, minutes: int = 30, member: str = "KM00000001") -> dict:
    b = {
        "seq": seq,
        "id": f"00000000-0000-4000-8000-{seq:012d}",
        "member": member,
        "kind": "credit",
        "minutes": minutes,
        "source": "disconnect",
        "source_ref": f"断线-{seq}",  # not ASCII: canonical JSON keeps UTF-8
        "covered_start": "2026-12-01T10:00:00+00:00",
        "covered_end": "2026-12-01T10:30:00+00:00",
        "policy_version": 3,
        "reverses": None,
        "expires_before": "2027-01-01T00:00:00+00:00",
        "expires_after": "2027-01-01T00:30:00+00:00",
        "created_at": "2026-12-01T11:00:00.123456+00:00",
    }
    if seq % 3 == 0:
        b["weighting"] = {"factor": 0.75, "usage_minutes": 40}
    return b


class PortalLog:
    """Entries seq 1..n as leaves 0..n-1, signed checkpoints of any size."""

    def __init__(self, signer: Signer | None = None, origin: str = ORIGIN) -> None:
        self.signer = signer or Signer.generate(origin)
        self.origin = origin
        self.bodies: list[dict] = []
        self.store = tlog.MemoryHashStore()

    def append(self, n: int, **kwargs) -> None:
        new = [body(len(self.bodies) + i + 1, **kwargs) for i in range(n)]
        self.bodies.extend(new)
        self.store.append([canonical(b) for b in new])

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey

    def checkpoint(self, size: int | None = None) -> str:
        size = self.store.size if size is None else size
        cp = Checkpoint(self.origin, size, self.store.tree_hash(size))
        return sign_checkpoint(cp, self.signer)

    def consistency(self, old: int, new: int) -> bytes:
        proof = self.store.consistency_proof(old, new)
        return json.dumps({"old": old, "new": new, "proof": [b64(h) for h in proof]}).encode()

    def receipt(self, seq: int, size: int | None = None) -> dict:
        size = self.store.size if size is None else size
        b = copy.deepcopy(self.bodies[seq - 1])
        leaf = canonical(b)
        return {
            "receipt_version": 2,
            "entry": b,
            "body_digest": hashlib.sha256(leaf).hexdigest(),
            "log": {
                "index": seq - 1,
                "leaf_data": b64(leaf),
                "proof": [b64(h) for h in self.store.inclusion_proof(seq - 1, size)],
                "checkpoint": self.checkpoint(size),
            },
            "how_to_verify": "...",
        }

    def fork(self, seq: int) -> PortalLog:
        """The same key's log with entry ``seq`` rewritten (fewer minutes)."""
        other = PortalLog(self.signer, self.origin)
        for b in self.bodies:
            b = copy.deepcopy(b)
            if b["seq"] == seq:
                b["minutes"] -= 1
            other.bodies.append(b)
        other.store.append([canonical(b) for b in other.bodies])
        return other
