"""Extending the hash chain: the one writer of ledger entries and the head."""

from __future__ import annotations

from kamen_portal.bulk import copy_insert

from ..ledger import digest, entry_body, link
from ..models import LedgerEntry, LedgerHead
from ..signals import ledger_entries_appended


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
    copy_insert(entries)
    LedgerHead.objects.filter(pk=1).update(seq=seq, hash=prev)
    # Still under the head lock, in the caller's transaction: the outbox of
    # the layers above records its events in chain order (signals.py).
    ledger_entries_appended.send(sender=LedgerEntry, entries=entries, member_nos=member_nos)
    return entries
