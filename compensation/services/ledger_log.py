"""The ledger's transparency log: the sequencer that integrates committed
entries into the Merkle tree, and the signed checkpoints (DESIGN §6).

Entries are written by ``chain.ledger_append`` as before; the tree is grown
afterwards, in batches, by ``ledger_log_integrate`` (run by the periodic task
that publishes checkpoints), under its own lock (``LedgerLogHead``) that no
writer of entries ever takes, so payouts wait for nothing more than they did.

Invariants: leaf ``i`` is entry ``seq = i + 1`` and its leaf data is the
entry's canonical JSON body (``ledger.canonical(entry_body(...))``); each
batch reads entries after the integrated size in ``seq`` order, stops at the
first gap, and writes the new stored hashes and the new size in one
transaction. A crash rolls the whole batch back and the next run redoes it,
so every entry is in the log exactly once, in ``seq`` order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction

from .. import tlog
from ..ledger import BODY_FIELDS, body_from_row, canonical
from ..log_keys import log_origin, log_signer
from ..models import LedgerEntry, LedgerLogCheckpoint, LedgerLogHash, LedgerLogHead
from ..tlog_notes import Checkpoint, sign_checkpoint

logger = logging.getLogger(__name__)

INTEGRATE_BATCH = 5000


def hash_reader(hash_model=LedgerLogHash) -> tlog.HashReader:
    """A ``tlog.HashReader`` over the stored-hash table (one query per read)."""

    def read(indexes: Sequence[int]) -> list[bytes]:
        found: dict[int, bytes] = {}
        wanted = sorted(set(indexes))
        for at in range(0, len(wanted), 5000):
            rows = hash_model.objects.filter(index__in=wanted[at : at + 5000])
            found.update((i, bytes(h)) for i, h in rows.values_list("index", "hash"))
        missing = [i for i in indexes if i not in found]
        if missing:
            raise tlog.TlogError("storage", f"stored hash {missing[0]} is missing")
        return [found[i] for i in indexes]

    return read


def leaf_data_rows(entries_qs) -> list[tuple[int, bytes]]:
    """``(seq, leaf data)`` of the entries of a queryset (ordered by the caller)."""
    return [(row[0], canonical(body_from_row(row))) for row in entries_qs.values_list(*BODY_FIELDS)]


def integrate_batch(
    *, entry_model, hash_model, head_model, batch_size: int = INTEGRATE_BATCH
) -> tuple[int, int]:
    """Integrate up to ``batch_size`` committed entries after the log's size,
    in one transaction. Returns ``(entries integrated, new size)``. Model
    classes are parameters so the data migration runs the same code."""
    with transaction.atomic():
        head_model.objects.bulk_create(
            [head_model(pk=1, size=0, root=tlog.EMPTY_TREE_HASH)], ignore_conflicts=True
        )
        head = head_model.objects.select_for_update().get(pk=1)
        size = head.size
        rows = leaf_data_rows(entry_model.objects.filter(seq__gt=size).order_by("seq")[:batch_size])
        leaves = []
        for seq, data in rows:
            if seq != size + len(leaves) + 1:
                # Entries get their seq under the chain head's lock and commit
                # in that order, so a gap is not a late writer: it is damage
                # for verify_ledger to name. Integrate up to it, not past it.
                logger.error("ledger log: entry #%s missing, integration stops", size + 1)
                break
            leaves.append(tlog.leaf_hash(data))
        if not leaves:
            return 0, size
        read = hash_reader(hash_model)
        new = tlog.append_hashes(size, leaves, read)
        base = tlog.stored_hash_count(size)
        hash_model.objects.bulk_create(
            [hash_model(index=base + i, hash=h) for i, h in enumerate(new)], batch_size=2000
        )
        new_size = size + len(leaves)
        known = {base + i: h for i, h in enumerate(new)}

        def read_known(indexes: Sequence[int]) -> list[bytes]:
            missing = [i for i in indexes if i not in known]
            known.update(zip(missing, read(missing), strict=True))
            return [known[i] for i in indexes]

        root = tlog.tree_hash(new_size, read_known)
        head_model.objects.filter(pk=1).update(size=new_size, root=root)
        return len(leaves), new_size


def ledger_log_integrate(*, batch_size: int = INTEGRATE_BATCH) -> int:
    """Integrate every committed entry not yet in the tree, batch by batch
    (safe to run twice, or concurrently: batches serialise on the log head).
    Returns the log's size."""
    while True:
        added, size = integrate_batch(
            entry_model=LedgerEntry,
            hash_model=LedgerLogHash,
            head_model=LedgerLogHead,
            batch_size=batch_size,
        )
        if added < batch_size:
            return size


def log_head() -> LedgerLogHead:
    return LedgerLogHead.objects.filter(pk=1).first() or LedgerLogHead(
        pk=1, size=0, root=tlog.EMPTY_TREE_HASH
    )


def ledger_log_publish(*, now: datetime) -> LedgerLogCheckpoint:
    """Sign and store a checkpoint of the integrated tree, unless the latest
    one already has its size (a tree that did not grow is not re-signed)."""
    head = log_head()
    latest = LedgerLogCheckpoint.objects.order_by("-size").first()
    if latest is not None and latest.size >= head.size:
        return latest
    checkpoint = Checkpoint(log_origin(), head.size, bytes(head.root))
    note = sign_checkpoint(checkpoint, log_signer())
    try:
        with transaction.atomic():
            return LedgerLogCheckpoint.objects.create(
                size=head.size, root=bytes(head.root), note=note, published_at=now
            )
    except IntegrityError:  # a concurrent publisher signed this size first
        return LedgerLogCheckpoint.objects.get(size=head.size)
