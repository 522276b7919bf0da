"""Checking a version 2 receipt offline: the entry is the leaf, the leaf is in
the tree, the tree's checkpoint is signed by the log's key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .errors import VerifyError
from .merkle import leaf_hash, verify_inclusion
from .notes import Checkpoint, Verifier, b64decode, open_checkpoint


def canonical_json(body: Any) -> bytes:
    """The bytes the portal hashes for an entry: keys sorted, separators
    ``,`` and ``:``, UTF-8 (not ASCII-escaped)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class ReceiptResult:
    index: int
    entry: dict
    checkpoint: Checkpoint

    @property
    def summary(self) -> str:
        e = self.entry
        return (
            f"entry #{e.get('seq')} ({e.get('kind')}, {e.get('minutes')} minutes, member "
            f"{e.get('member')}) is leaf {self.index} of the log signed at checkpoint "
            f"{self.checkpoint.fingerprint}"
        )


def parse_receipt(raw: bytes) -> dict:
    try:
        receipt = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise VerifyError("malformed_receipt", "the receipt is not a JSON document") from None
    if not isinstance(receipt, dict):
        raise VerifyError("malformed_receipt", "the receipt is not a JSON object")
    return receipt


def check_receipt(receipt: dict, key: Verifier, *, origin: str | None = None) -> ReceiptResult:
    """Raise ``VerifyError`` unless ``receipt`` proves its entry in the log
    whose checkpoints ``key`` signs. Codes: ``malformed_receipt``,
    ``unsupported_version``, ``not_in_log``, ``entry_mismatch``,
    ``digest_mismatch``, ``malformed_checkpoint``, ``unknown_key``,
    ``bad_signature``, ``wrong_origin``, ``inclusion_failed``."""
    version = receipt.get("receipt_version")
    if version != 2:
        raise VerifyError(
            "unsupported_version",
            f"receipt_version is {version!r}; this tool checks version 2 receipts "
            "(download the receipt again from the portal)",
        )
    entry = receipt.get("entry")
    if not isinstance(entry, dict):
        raise VerifyError("malformed_receipt", "the receipt has no 'entry' object")
    log = receipt.get("log")
    if log is None:
        due = receipt.get("next_checkpoint_due")
        raise VerifyError(
            "not_in_log",
            "the entry is newer than the latest checkpoint; download the receipt again after "
            f"{due or 'the next checkpoint'}",
        )
    if not isinstance(log, dict):
        raise VerifyError("malformed_receipt", "the receipt's 'log' is not an object")
    index, proof_text, note = log.get("index"), log.get("proof"), log.get("checkpoint")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise VerifyError("malformed_receipt", "log.index is not a leaf number")
    if not isinstance(proof_text, list) or not all(isinstance(h, str) for h in proof_text):
        raise VerifyError("malformed_receipt", "log.proof is not a list of base64 hashes")
    if not isinstance(log.get("leaf_data"), str):
        raise VerifyError("malformed_receipt", "log.leaf_data is not base64 text")
    try:
        leaf = base64.b64decode(log["leaf_data"].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise VerifyError("malformed_receipt", "log.leaf_data is not valid base64") from None

    # 1. The entry shown is the leaf that is proven (no field changed).
    if canonical_json(entry) != leaf:
        raise VerifyError(
            "entry_mismatch",
            "the entry does not match log.leaf_data (a field of the entry was changed)",
        )
    digest = receipt.get("body_digest")
    if digest is not None and digest != hashlib.sha256(leaf).hexdigest():
        raise VerifyError("digest_mismatch", "body_digest is not the SHA-256 of the entry")
    # 2. The checkpoint is the log's, signed by its key.
    checkpoint = open_checkpoint(note, key, origin=origin)
    # 3. The leaf is in the tree the checkpoint signs.
    proof = [b64decode(h, "inclusion_failed", "a proof hash") for h in proof_text]
    verify_inclusion(
        proof, index=index, size=checkpoint.size, leaf=leaf_hash(leaf), root=checkpoint.root_hash
    )
    if entry.get("seq") != index + 1:
        raise VerifyError(
            "entry_mismatch",
            f"entry #{entry.get('seq')} cannot be leaf {index} (leaf i is seq i+1)",
        )
    return ReceiptResult(index, entry, checkpoint)
