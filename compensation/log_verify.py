"""``verify_ledger``'s check of the transparency log: recompute the Merkle
tree from the entries, streaming (only the tree's frontier is kept), and
hold every stored hash, the log head and every stored checkpoint (its root
and its Ed25519 signature) to it. Any edited entry, stored hash or
checkpoint is named."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from . import tlog
from .ledger import ChainCheck, ChainProblem, ledger_pages
from .log_keys import log_verifiers
from .models import LedgerLogCheckpoint, LedgerLogHash, LedgerLogHead
from .tlog_notes import NoteError, open_checkpoint


@dataclass(frozen=True)
class LogProblem:
    seq: int  # the entry (or tree size) the problem is found at
    message: str


def _stored(lo: int, hi: int) -> list[tuple[int, bytes]]:
    """The stored hashes ``[lo, hi)`` as ``(index, hash)`` in index order."""
    # A plain cursor: no model field converters for tens of thousands of rows.
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {q('index')}, {q('hash')} FROM {q(LedgerLogHash._meta.db_table)}"  # noqa: S608
            f" WHERE {q('index')} >= %s AND {q('index')} < %s ORDER BY {q('index')}",
            [lo, hi],
        )
        return [(i, bytes(h)) for i, h in cursor.fetchall()]


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


class LogCheck:
    """verify_log's checks fed page by page (``ledger.ledger_pages``), so that
    verify_ledger can run them and the chain's over one scan of the entries."""

    def __init__(self, batch_size: int = 5000) -> None:
        self.batch_size = batch_size
        self.problems: list[LogProblem] = []
        head = self.head = LedgerLogHead.objects.filter(pk=1).first()
        self.head_size = head.size if head else 0
        checkpoints = list(LedgerLogCheckpoint.objects.order_by("size"))
        _check_signatures(checkpoints, self.problems)
        self.roots_wanted = {cp.size: bytes(cp.root) for cp in checkpoints}
        if head is not None:
            self.roots_wanted.setdefault(head.size, bytes(head.root))
        # Stored hashes computed so far that later appends or roots may read:
        # always a superset of the current tree's frontier.
        self.known: dict[int, bytes] = {}
        self.size = 0
        self.stopped = False
        self.pending: list[bytes] = []
        if 0 in self.roots_wanted and self.roots_wanted[0] != tlog.EMPTY_TREE_HASH:
            self.problems.append(LogProblem(0, "the empty tree's checkpoint has a wrong root"))

    def _read(self, indexes: Sequence[int]) -> list[bytes]:
        known = self.known
        return [known[i] for i in indexes]

    def _check_roots(self, lo: int, hi: int) -> None:
        head = self.head
        for s in sorted(x for x in self.roots_wanted if lo < x <= hi):
            if tlog.tree_hash(s, self._read) != self.roots_wanted[s]:
                what = "the log head" if head and s == head.size else f"checkpoint of size {s}"
                self.problems.append(
                    LogProblem(s, f"{what}: root differs from the recomputed tree")
                )

    def _flush(self) -> None:
        batch, size = self.pending, self.size
        self.pending = []
        base = tlog.stored_hash_count(size)
        new = tlog.append_hashes(size, batch, self._read)
        known = self.known
        known.update(zip(range(base, base + len(new)), new, strict=True))
        # Hold the stored hashes (what tiles and proofs are served from) to
        # the recomputed ones, as far as the sequencer has integrated: one
        # list comparison when all is well, the first difference named if not.
        limit = tlog.stored_hash_count(min(self.head_size, size + len(batch)))
        rows = _stored(base, limit) if base < limit else []
        if [h for _, h in rows] != new[: max(limit - base, 0)]:
            stored = dict(rows)
            for i in range(base, limit):
                if stored.get(i) != known[i]:
                    level, n = tlog.split_stored_hash_index(i)
                    seq = (n << level) + 1
                    self.problems.append(
                        LogProblem(seq, f"stored log hash {i} differs from entry #{seq} onwards")
                    )
                    break
        self._check_roots(size, size + len(batch))
        self.size = size = size + len(batch)
        self.known = {i: known[i] for i in tlog._frontier_indexes(size)}

    def feed(self, page: list) -> None:
        if self.stopped:
            return
        pending, sha256 = self.pending, hashlib.sha256
        expected = self.size + len(pending) + 1
        for seq, body, *_ in page:
            if seq != expected:
                self.problems.append(LogProblem(seq, f"sequence gap: leaf {expected - 1} missing"))
                self.stopped = True
                break
            pending.append(sha256(b"\x00" + body).digest())  # tlog.leaf_hash, inline
            expected += 1
        if len(pending) >= self.batch_size or self.stopped:
            self._flush()

    def finish(self) -> tuple[int, list[LogProblem]]:
        if self.pending:
            self._flush()
        for s in sorted(self.roots_wanted):
            if s > self.size:
                self.problems.append(
                    LogProblem(s, f"tree size {s} is larger than the ledger ({self.size})")
                )
        self.problems.sort(key=lambda p: p.seq)
        return self.size, self.problems


def verify_log(batch_size: int = 5000) -> tuple[int, list[LogProblem]]:
    """Recompute the tree over every entry; returns (leaves, problems in order)."""
    check = LogCheck(batch_size)
    for page in ledger_pages(batch_size):
        check.feed(page)
    return check.finish()


def verify_chain_and_log(
    batch_size: int = 5000,
) -> tuple[tuple[int, list[ChainProblem]], tuple[int, list[LogProblem]]]:
    """``(verify_chain(), verify_log())`` from one scan of the entries: each
    body is read and encoded once for both (what verify_ledger runs)."""
    chain, log = ChainCheck(), LogCheck(batch_size)
    for page in ledger_pages(batch_size):
        chain.feed(page)
        log.feed(page)
    return chain.finish(), log.finish()
