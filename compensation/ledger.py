"""The hash chain of the compensation ledger.

Every entry's ``body_digest`` is the SHA-256 of its canonical JSON body, and
``hash = sha256(prev_hash + ":" + body_digest)``. The public chain page shows
only ``(seq, body_digest, hash)``, so anyone can walk from a receipt's entry to
a published head without seeing other members' data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Case, Q, When

from members.models import MemberProfile

from .models import GENESIS_HASH, LedgerCheckpoint, LedgerEntry, LedgerHead, LedgerKind


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def entry_body(entry: LedgerEntry, *, member_no: str, reverses_seq: int | None) -> dict:
    return _body(
        seq=entry.seq,
        public_id=entry.public_id,
        member_no=member_no,
        kind=entry.kind,
        minutes=entry.minutes,
        source_kind=entry.source_kind,
        source_ref=entry.source_ref,
        covered_start=entry.covered_start,
        covered_end=entry.covered_end,
        policy_version=entry.policy_version,
        reverses_seq=reverses_seq,
        expires_before=entry.expires_before,
        expires_after=entry.expires_after,
        created_at=entry.created_at,
        weighting=entry.weighting,
        tier=getattr(entry, "tier", ""),
    )


# The columns ``body_from_row`` reads, for ``values_list(*BODY_FIELDS)``: the
# log's sequencer, its tiles and ``verify_ledger`` build bodies from plain
# rows (one query, no model instances), byte for byte what ``entry_body`` gives.
BODY_FIELDS = (
    "seq",
    "public_id",
    "member__member_no",
    "kind",
    "minutes",
    "source_kind",
    "source_ref",
    "covered_start",
    "covered_end",
    "policy_version",
    "reverses__seq",
    "expires_before",
    "expires_after",
    "created_at",
    "weighting",
    "tier",
)


def body_from_row(row: tuple) -> dict:
    """``entry_body`` of a ``values_list(*BODY_FIELDS)`` row."""
    return _body(**dict(zip(_BODY_ARGS, row, strict=True)))


_BODY_ARGS = (
    "seq",
    "public_id",
    "member_no",
    "kind",
    "minutes",
    "source_kind",
    "source_ref",
    "covered_start",
    "covered_end",
    "policy_version",
    "reverses_seq",
    "expires_before",
    "expires_after",
    "created_at",
    "weighting",
    "tier",
)


def _body(
    *,
    seq,
    public_id,
    member_no,
    kind,
    minutes,
    source_kind,
    source_ref,
    covered_start,
    covered_end,
    policy_version,
    reverses_seq,
    expires_before,
    expires_after,
    created_at,
    weighting,
    tier,
) -> dict:
    body = {
        "seq": seq,
        "id": str(public_id),
        "member": member_no,
        "kind": kind,
        "minutes": minutes,
        "source": source_kind,
        "source_ref": source_ref,
        "covered_start": _iso(covered_start),
        "covered_end": _iso(covered_end),
        "policy_version": policy_version,
        "reverses": reverses_seq,
        "expires_before": _iso(expires_before),
        "expires_after": _iso(expires_after),
        "created_at": _iso(created_at),
    }
    # Added with usage weighting: present only on entries that carry it, so
    # every earlier entry's digest is unchanged.
    if weighting:
        body["weighting"] = weighting
    # Added with membership entries: present only when set, so the bodies
    # (and digests) of every older entry are unchanged.
    if tier:
        body["tier"] = tier
    return body


def canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(body: dict) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def link(prev_hash: str, body_digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{body_digest}".encode()).hexdigest()


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
    # Plain rows, not model instances: the bodies are built from the same
    # columns (body_from_row), several times faster over millions of entries.
    rows = (
        LedgerEntry.objects.order_by("seq")
        .values_list(*BODY_FIELDS, "body_digest", "prev_hash", "hash")
        .iterator(chunk_size=batch_size)
    )
    count = 0
    width = len(BODY_FIELDS)
    for row in rows:
        seq, body_digest, prev_hash, entry_hash = row[0], *row[width:]
        count += 1
        expected_seq += 1
        if seq != expected_seq:
            problems.append(ChainProblem(seq, f"sequence gap: expected {expected_seq}"))
            expected_seq = seq
        if digest(body_from_row(row[:width])) != body_digest:
            problems.append(ChainProblem(seq, "content does not match its digest"))
        if prev_hash != prev:
            problems.append(ChainProblem(seq, "previous-hash link is broken"))
        if link(prev_hash, body_digest) != entry_hash:
            problems.append(ChainProblem(seq, "hash does not match its link"))
        prev = entry_hash
        if seq in checkpoint_seqs:
            hashes_at[seq] = entry_hash
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


@dataclass(frozen=True)
class ExpiryProblem:
    member_no: str
    message: str


def _entry_moves_as_it_says(
    *,
    kind: str,
    before: datetime | None,
    after: datetime | None,
    minutes: int,
    created_at: datetime,
) -> bool:
    """An entry's own arithmetic: the expiry moved by its minutes, from the
    old expiry, or from the moment of crediting when the membership had
    lapsed (or never existed) and time was added. An opening entry states
    the baseline: from nothing to any expiry, moving no minutes."""
    if kind == LedgerKind.OPENING:
        return before is None and minutes == 0
    if after is None:
        return before is None and minutes == 0
    delta = timedelta(minutes=minutes)
    if before is not None and after - before == delta:
        return True
    return minutes > 0 and (before is None or before < created_at) and after == created_at + delta


def reconcile_expiries(batch_size: int = 5000) -> tuple[int, list[ExpiryProblem]]:
    """Every member's expiry must be the fold of their ledger entries.

    A member's entries are folded in chain order, their opening entry (if
    any) first: the data migration that gave existing members one appended
    it after entries they already had, and it states the baseline those
    started from. The first entry must start from nothing; each next one
    from the expiry the previous one left (nothing moved the time in
    between); each moves it by its own minutes; the last leaves exactly the
    expiry the member has now. A member with an expiry and no entry at all
    is a problem too. Any ``UPDATE`` of ``expires_at`` behind the ledger's
    back breaks one of these links. Returns (members checked, problems)."""
    problems: list[ExpiryProblem] = []
    expiries = dict(
        MemberProfile.objects.filter(Q(ledger__isnull=False) | Q(expires_at__isnull=False))
        .distinct()
        .values_list("pk", "expires_at")
    )
    numbers = dict(MemberProfile.objects.filter(pk__in=expiries).values_list("pk", "member_no"))
    rows = (
        LedgerEntry.objects.annotate(
            opening_first=Case(When(kind=LedgerKind.OPENING, then=0), default=1)
        )
        .order_by("member_id", "opening_first", "seq")
        .values_list(
            "member_id", "seq", "kind", "minutes", "expires_before", "expires_after", "created_at"
        )
        .iterator(chunk_size=batch_size)
    )
    seen: set[int] = set()
    current_member = None
    last_after: datetime | None = None
    last_seq = 0

    def close(member_id: int) -> None:
        if expiries.get(member_id) != last_after:
            problems.append(
                ExpiryProblem(
                    numbers[member_id],
                    f"expiry {_iso(expiries.get(member_id))} is not explained by the ledger: "
                    f"its last entry #{last_seq} leaves {_iso(last_after)}",
                )
            )

    for member_id, seq, kind, minutes, before, after, created_at in rows:
        if member_id != current_member:
            if current_member is not None:
                close(current_member)
            current_member = member_id
            seen.add(member_id)
            if before is not None:
                problems.append(
                    ExpiryProblem(
                        numbers[member_id],
                        f"first entry #{seq} starts from {_iso(before)}, not from nothing: "
                        "the membership had time the ledger never recorded",
                    )
                )
        elif before != last_after or kind == LedgerKind.OPENING:
            problems.append(
                ExpiryProblem(
                    numbers[member_id],
                    f"entry #{seq} starts from {_iso(before)} but entry #{last_seq} left "
                    f"{_iso(last_after)}: the expiry moved outside the ledger in between",
                )
            )
        if not _entry_moves_as_it_says(
            kind=kind, before=before, after=after, minutes=minutes, created_at=created_at
        ):
            problems.append(
                ExpiryProblem(
                    numbers[member_id],
                    f"entry #{seq} moves the expiry from {_iso(before)} to {_iso(after)}, "
                    f"not by its {minutes} minutes",
                )
            )
        last_after, last_seq = after, seq
    if current_member is not None:
        close(current_member)
    for member_id in sorted(set(expiries) - seen):
        problems.append(
            ExpiryProblem(
                numbers[member_id],
                f"expiry {_iso(expiries[member_id])} has no ledger entry: "
                "membership time was set outside the ledger",
            )
        )
    return len(expiries), problems
