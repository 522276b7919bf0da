"""``verify_ledger``'s check of the transparency log: recompute the Merkle
tree from the entries, streaming (only the tree's frontier is kept), and
hold every stored hash, the log head and every stored checkpoint (its root
and its Ed25519 signature) to it. Any edited entry, stored hash or
checkpoint is named."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from . import tlog
from .ledger import BODY_FIELDS, body_from_row, canonical
from .log_keys import log_verifiers
from .models import LedgerEntry, LedgerLogCheckpoint, LedgerLogHash, LedgerLogHead
from .tlog_notes import NoteError, open_checkpoint


@dataclass(frozen=True)
class LogProblem:
    seq: int  # the entry (or tree size) the problem is found at
    message: str


def _leaf_hashes(batch_size: int) -> Iterator[tuple[int, bytes]]:
    rows = LedgerEntry.objects.order_by("seq").values_list(*BODY_FIELDS)
    for row in rows.iterator(chunk_size=batch_size):
        yield row[0], tlog.leaf_hash(canonical(body_from_row(row)))


def _stored(lo: int, hi: int) -> dict[int, bytes]:
    rows = LedgerLogHash.objects.filter(index__gte=lo, index__lt=hi)
    return {i: bytes(h) for i, h in rows.values_list("index", "hash")}


def _check_signatures(checkpoints, problems: list[LogProblem]) -> None:
    keys = log_verifiers()
    for cp in checkpoints:
        opened = None
        origin = cp.note.split("\n", 1)[0]
        for key in keys:
            try:
                opened = open_checkpoint(cp.note, key, origin=origin)
                break
            except NoteError:
                continue
        if opened is None:
            problems.append(
                LogProblem(cp.size, f"checkpoint of size {cp.size} is not signed by a known key")
            )
        elif (opened.checkpoint.size, opened.checkpoint.root_hash) != (cp.size, bytes(cp.root)):
            problems.append(
                LogProblem(cp.size, f"checkpoint of size {cp.size}: its note says otherwise")
            )


def verify_log(batch_size: int = 5000) -> tuple[int, list[LogProblem]]:
    """Recompute the tree over every entry; returns (leaves, problems in order)."""
    problems: list[LogProblem] = []
    head = LedgerLogHead.objects.filter(pk=1).first()
    head_size = head.size if head else 0
    checkpoints = list(LedgerLogCheckpoint.objects.order_by("size"))
    _check_signatures(checkpoints, problems)
    roots_wanted = {cp.size: bytes(cp.root) for cp in checkpoints}
    if head is not None:
        roots_wanted.setdefault(head.size, bytes(head.root))
    # Stored hashes computed so far that later appends or roots may read:
    # always a superset of the current tree's frontier.
    known: dict[int, bytes] = {}
    size = 0

    def read(indexes: Sequence[int]) -> list[bytes]:
        return [known[i] for i in indexes]

    def check_roots(lo: int, hi: int) -> None:
        for s in sorted(x for x in roots_wanted if lo < x <= hi):
            if tlog.tree_hash(s, read) != roots_wanted[s]:
                what = "the log head" if head and s == head.size else f"checkpoint of size {s}"
                problems.append(LogProblem(s, f"{what}: root differs from the recomputed tree"))

    def flush(batch: list[tuple[int, bytes]]) -> None:
        nonlocal size, known
        base = tlog.stored_hash_count(size)
        new = tlog.append_hashes(size, [h for _, h in batch], read)
        known.update((base + i, h) for i, h in enumerate(new))
        # Hold the stored hashes (what tiles and proofs are served from) to
        # the recomputed ones, as far as the sequencer has integrated.
        limit = tlog.stored_hash_count(min(head_size, size + len(batch)))
        if base < limit:
            stored = _stored(base, limit)
            for i in range(base, limit):
                if stored.get(i) != known[i]:
                    level, n = tlog.split_stored_hash_index(i)
                    seq = (n << level) + 1
                    problems.append(
                        LogProblem(seq, f"stored log hash {i} differs from entry #{seq} onwards")
                    )
                    break
        check_roots(size, size + len(batch))
        size += len(batch)
        frontier = set(tlog._frontier_indexes(size))
        known = {i: known[i] for i in frontier}

    batch: list[tuple[int, bytes]] = []
    if 0 in roots_wanted and roots_wanted[0] != tlog.EMPTY_TREE_HASH:
        problems.append(LogProblem(0, "the empty tree's checkpoint has a wrong root"))
    for seq, leaf in _leaf_hashes(batch_size):
        if seq != size + len(batch) + 1:
            problems.append(LogProblem(seq, f"sequence gap: leaf {size + len(batch)} missing"))
            break
        batch.append((seq, leaf))
        if len(batch) >= batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    for s in sorted(roots_wanted):
        if s > size:
            problems.append(LogProblem(s, f"tree size {s} is larger than the ledger ({size})"))
    problems.sort(key=lambda p: p.seq)
    return size, problems
