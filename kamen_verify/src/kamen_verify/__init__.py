"""Check Kamen ledger receipts offline and witness the portal's transparency
log, with no code from the portal: RFC 9162 proofs, C2SP signed notes and
checkpoints (Ed25519), C2SP tlog-cosignature (cosignature/v1)."""

from __future__ import annotations

from .errors import VerifyError
from .merkle import leaf_hash, node_hash, verify_consistency, verify_inclusion
from .notes import (
    Checkpoint,
    Verifier,
    WitnessSigner,
    cosignature_line,
    cosigned_note,
    open_checkpoint,
    parse_verifier_key,
    parse_witness_key,
)
from .receipt import canonical_json, check_receipt
from .witness import SubmitRefused, Witness, WitnessResult, http_submit

__version__ = "1.0.0"

__all__ = [
    "Checkpoint",
    "Verifier",
    "VerifyError",
    "SubmitRefused",
    "Witness",
    "WitnessResult",
    "WitnessSigner",
    "canonical_json",
    "check_receipt",
    "cosignature_line",
    "cosigned_note",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_verifier_key",
    "parse_witness_key",
    "verify_consistency",
    "verify_inclusion",
    "http_submit",
]
