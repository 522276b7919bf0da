"""The hash chain of the compensation ledger.

Every entry's ``body_digest`` is the SHA-256 of its canonical JSON body, and
``hash = sha256(prev_hash + ":" + body_digest)``. The public chain page shows
only ``(seq, body_digest, hash)``, so anyone can walk from a receipt's entry to
a published head without seeing other members' data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .models import GENESIS_HASH, LedgerCheckpoint, LedgerEntry, LedgerHead


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def entry_body(entry: LedgerEntry, *, member_no: str, reverses_seq: int | None) -> dict:
    return {
        "seq": entry.seq,
        "id": str(entry.public_id),
        "member": member_no,
        "kind": entry.kind,
        "minutes": entry.minutes,
        "source": entry.source_kind,
        "source_ref": entry.source_ref,
        "covered_start": _iso(entry.covered_start),
        "covered_end": _iso(entry.covered_end),
        "policy_version": entry.policy_version,
        "reverses": reverses_seq,
        "expires_before": _iso(entry.expires_before),
        "expires_after": _iso(entry.expires_after),
        "created_at": _iso(entry.created_at),
    }


def canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(body: dict) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def link(prev_hash: str, body_digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{body_digest}".encode()).hexdigest()


def ledger_append(entries: list[LedgerEntry], *, member_nos: dict[int, str]) -> list[LedgerEntry]:
    """Chain and insert ``entries`` (unsaved) in order. Must run inside the
    caller's transaction, after any member rows were locked: the head row is
    locked last, so lock order is always members (by pk) then head."""
    # ON CONFLICT DO NOTHING: safe under concurrency, and restores the genesis
    # row should a flushed database lack it.
    LedgerHead.objects.bulk_create([LedgerHead(pk=1)], ignore_conflicts=True)
    head = LedgerHead.objects.select_for_update().get(pk=1)
    seq, prev = head.seq, head.hash
    for entry in entries:
        seq += 1
        entry.seq = seq
        entry.prev_hash = prev
        reverses_seq = entry.reverses.seq if entry.reverses_id else None
        entry.body_digest = digest(
            entry_body(entry, member_no=member_nos[entry.member_id], reverses_seq=reverses_seq)
        )
        entry.hash = link(prev, entry.body_digest)
        prev = entry.hash
    LedgerEntry.objects.bulk_create(entries)
    LedgerHead.objects.filter(pk=1).update(seq=seq, hash=prev)
    return entries


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


def verify_chain(batch_size: int = 2000) -> tuple[int, list[ChainProblem]]:
    """Recompute every digest and link; compare with the head and with every
    published checkpoint. Returns (entries checked, problems in seq order)."""
    problems: list[ChainProblem] = []
    prev = GENESIS_HASH
    expected_seq = 0
    hashes_at: dict[int, str] = {}
    checkpoint_seqs = set(LedgerCheckpoint.objects.values_list("seq", flat=True))
    rows = (
        LedgerEntry.objects.order_by("seq")
        .select_related("member", "reverses")
        .iterator(chunk_size=batch_size)
    )
    count = 0
    for entry in rows:
        count += 1
        expected_seq += 1
        if entry.seq != expected_seq:
            problems.append(ChainProblem(entry.seq, f"sequence gap: expected {expected_seq}"))
            expected_seq = entry.seq
        body = entry_body(
            entry,
            member_no=entry.member.member_no,
            reverses_seq=entry.reverses.seq if entry.reverses_id else None,
        )
        if digest(body) != entry.body_digest:
            problems.append(ChainProblem(entry.seq, "content does not match its digest"))
        if entry.prev_hash != prev:
            problems.append(ChainProblem(entry.seq, "previous-hash link is broken"))
        if link(entry.prev_hash, entry.body_digest) != entry.hash:
            problems.append(ChainProblem(entry.seq, "hash does not match its link"))
        prev = entry.hash
        if entry.seq in checkpoint_seqs:
            hashes_at[entry.seq] = entry.hash
    head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(pk=1)
    if head.seq != expected_seq or head.hash != prev:
        problems.append(ChainProblem(head.seq, "ledger head does not match the last entry"))
    for checkpoint in LedgerCheckpoint.objects.order_by("seq"):
        if checkpoint.seq == 0:
            continue
        if hashes_at.get(checkpoint.seq) != checkpoint.hash:
            problems.append(
                ChainProblem(
                    checkpoint.seq,
                    f"differs from the head published at {checkpoint.published_at.isoformat()}",
                )
            )
    problems.sort(key=lambda p: p.seq)
    return count, problems


def walk_to_head(start_hash: str, digests: Iterable[str]) -> str:
    """Follow the chain from an entry's hash over the next entries' digests."""
    current = start_hash
    for body_digest in digests:
        current = link(current, body_digest)
    return current
