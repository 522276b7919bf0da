"""Reads of the ledger's transparency log that the public endpoints, the
receipts and ``verify_ledger`` share: checkpoints, proofs, tiles and entry
bundles, all from stored hashes (nothing recomputed but the leaves of an
entry bundle, which are the entries' canonical bodies)."""

from __future__ import annotations

from . import tlog
from .log_keys import witness_verifiers
from .models import LedgerEntry, LedgerLogCheckpoint, LedgerLogCosignature
from .services.ledger_log import hash_reader, leaf_data_rows, log_head


def latest_log_checkpoint() -> LedgerLogCheckpoint | None:
    return LedgerLogCheckpoint.objects.order_by("-size").first()


def checkpoint_with_cosignatures(checkpoint: LedgerLogCheckpoint) -> str:
    """The signed note as served: the log's signature, then the lines of the
    witnesses that cosigned it (C2SP tlog-witness: a log serves the
    cosignatures it collected with the checkpoint)."""
    lines = [c.line for c in checkpoint.cosignatures.order_by("witness", "key_id")]
    return checkpoint.note + "".join(lines)


def witnesses_seen() -> list[dict]:
    """Each configured witness and the newest checkpoint it cosigned (or None)."""
    seen = []
    for witness in witness_verifiers():
        latest = (
            LedgerLogCosignature.objects.filter(witness=witness.name, key_id=witness.key_id)
            .select_related("checkpoint")
            .order_by("-checkpoint__size")
            .first()
        )
        seen.append({"name": witness.name, "vkey": witness.vkey, "latest": latest})
    return seen


def log_size() -> int:
    """How many entries the tree holds (integrated; at least every checkpoint's size)."""
    return log_head().size


def inclusion_proof(*, index: int, size: int) -> list[bytes]:
    return tlog.inclusion_proof(index, size, hash_reader())


def consistency_proof(*, old: int, new: int) -> list[bytes]:
    """RFC 9162 proof that the tree of ``new`` leaves extends that of ``old``;
    ``tlog.ProofError`` (code ``bad_size``) when ``new`` is beyond the tree."""
    size = log_size()
    if not 0 <= old <= new or new > size:
        raise tlog.ProofError(
            "bad_size", f"need 0 <= old <= new <= {size} (the log's size), got {old} and {new}"
        )
    return tlog.consistency_proof(old, new, hash_reader())


def tile_bytes(tile: tlog.Tile) -> bytes:
    """The bytes of a hash tile or entry bundle of the integrated tree;
    ``tlog.TileError`` (``tile_not_in_tree``) for one it does not have."""
    tlog.check_tile_in_tree(tile, log_size())
    if not tile.is_entries:
        return tlog.read_tile(tile, hash_reader())
    first = tile.index * tlog.TILE_WIDTH + 1  # leaf i is entry seq i + 1
    rows = leaf_data_rows(
        LedgerEntry.objects.filter(seq__gte=first, seq__lt=first + tile.width).order_by("seq")
    )
    if [seq for seq, _ in rows] != list(range(first, first + tile.width)):
        raise tlog.TileError("tile_not_in_tree", f"{tile.path} lacks entries")
    return tlog.entry_bundle(data for _, data in rows)
