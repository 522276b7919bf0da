"""The hash chain of the compensation ledger.

Every entry's ``body_digest`` is the SHA-256 of its canonical JSON body, and
``hash = sha256(prev_hash + ":" + body_digest)``. The public chain page shows
only ``(seq, body_digest, hash)``, so anyone can walk from a receipt's entry to
a published head without seeing other members' data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


# One encoder, not one per call (json.dumps builds a new one for these
# options): the same bytes, a microsecond less per entry.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(body: dict) -> bytes:
    return _CANONICAL.encode(body).encode()


# verify_ledger's scan on PostgreSQL (issue 23): the database formats the
# timestamps exactly as ``_iso`` does (UTC, microseconds, "+00:00") and the
# public id as ``str(uuid)``, so a row becomes its canonical body without
# Django's converters or a datetime object per column. Keyset pages on the
# unique ``seq`` index, so memory stays flat over millions of entries.
_PG_ISO = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _pg_scan_sql() -> str:
    from django.db import connection

    q = connection.ops.quote_name
    entries, members = q(LedgerEntry._meta.db_table), q(MemberProfile._meta.db_table)
    iso = [_PG_ISO.format(f"e.{q(c)}") for c in ("covered_start", "covered_end")]
    iso2 = [_PG_ISO.format(f"e.{q(c)}") for c in ("expires_before", "expires_after", "created_at")]
    # Scalar subqueries, not joins: the plan stays a walk of the seq index
    # (joins made the planner start parallel workers for every page, twice
    # the time). Identifiers from model meta, values bound as parameters.
    return (
        f"SELECT e.seq, e.public_id::text,"  # noqa: S608
        f" (SELECT m.member_no FROM {members} m WHERE m.id = e.member_id),"
        f" e.kind, e.minutes, e.source_kind, e.source_ref, {iso[0]}, {iso[1]}, e.policy_version,"
        f" (SELECT r.seq FROM {entries} r WHERE r.id = e.reverses_id),"
        f" {iso2[0]}, {iso2[1]}, {iso2[2]}, e.weighting::text, e.tier,"
        f" e.body_digest, e.prev_hash, e.hash"
        f" FROM {entries} e WHERE e.seq > %s ORDER BY e.seq LIMIT %s"
    )


# The canonical body of an entry without tier or weighting, its keys in
# ``sort_keys`` order, each string escaped by the encoder ``canonical`` uses
# (``ensure_ascii=False``): byte for byte ``canonical(body)``, twice as fast
# as encoding a dict (test_ledger checks the two agree). Timestamps and ids
# come formatted by the database (digits and ``-:.T+`` only).
_PG_TEMPLATE = (
    '{"covered_end":%s,"covered_start":%s,"created_at":%s,"expires_after":%s,'
    '"expires_before":%s,"id":"%s","kind":%s,"member":%s,"minutes":%d,'
    '"policy_version":%d,"reverses":%s,"seq":%d,"source":%s,"source_ref":%s}'
)
_escape = json.encoder.encode_basestring


def _q(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _pg_canonical(row: tuple) -> bytes:
    """``canonical(body_from_row(...))`` of a ``_pg_scan_sql`` row."""
    weighting = json.loads(row[14]) if row[14] is not None else None
    if weighting or row[15]:
        body = {
            "seq": row[0],
            "id": row[1],
            "member": row[2],
            "kind": row[3],
            "minutes": row[4],
            "source": row[5],
            "source_ref": row[6],
            "covered_start": row[7],
            "covered_end": row[8],
            "policy_version": row[9],
            "reverses": row[10],
            "expires_before": row[11],
            "expires_after": row[12],
            "created_at": row[13],
        }
        if weighting:
            body["weighting"] = weighting
        if row[15]:
            body["tier"] = row[15]
        return _CANONICAL.encode(body).encode()
    return (
        _PG_TEMPLATE
        % (
            _q(row[8]),
            _q(row[7]),
            _q(row[13]),
            _q(row[12]),
            _q(row[11]),
            row[1],
            _escape(row[3]),
            _escape(row[2]),
            row[4],
            row[9],
            "null" if row[10] is None else row[10],
            row[0],
            _escape(row[5]),
            _escape(row[6]),
        )
    ).encode()


ScanRow = tuple[int, bytes, str, str, str]


def _pg_pages(connection, batch_size: int) -> Iterator[list[ScanRow]]:
    """Keyset pages of ``_pg_scan_sql``, the next one fetched while the
    caller checks this one: the database's half of the work (about as long
    as ours) overlaps ours instead of adding to it. The fetching thread uses
    the same psycopg connection, so it reads what this transaction sees
    (psycopg connections are thread-safe, one statement at a time; Django's
    wrapper is not, hence the raw connection)."""
    sql = _pg_scan_sql()
    connection.ensure_connection()
    raw = connection.connection

    def fetch(after: int) -> list[tuple]:
        with raw.cursor() as cursor:
            cursor.execute(sql, [after, batch_size])
            return cursor.fetchall()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-scan") as pool:
        rows = fetch(0)
        while rows:
            following = pool.submit(fetch, rows[-1][0]) if len(rows) == batch_size else None
            yield [(r[0], _pg_canonical(r), r[16], r[17], r[18]) for r in rows]
            rows = following.result() if following else []


def ledger_pages(batch_size: int = 5000) -> Iterator[list[ScanRow]]:
    """Every entry in ``seq`` order, a page at a time, as ``(seq, canonical
    body bytes, body_digest, prev_hash, hash)``: what verify_ledger
    recomputes the chain and the log's tree from, in one scan."""
    from django.db import connection

    if connection.vendor == "postgresql":
        yield from _pg_pages(connection, batch_size)
        return
    width = len(BODY_FIELDS)
    rows = (
        LedgerEntry.objects.order_by("seq")
        .values_list(*BODY_FIELDS, "body_digest", "prev_hash", "hash")
        .iterator(chunk_size=batch_size)
    )
    page: list[ScanRow] = []
    for row in rows:
        page.append((row[0], canonical(body_from_row(row[:width])), *row[width:]))
        if len(page) >= batch_size:
            yield page
            page = []
    if page:
        yield page


def digest(body: dict) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def link(prev_hash: str, body_digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{body_digest}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


class ChainCheck:
    """verify_chain's checks fed page by page (``ledger_pages``), so that
    verify_ledger can run them and the log's over one scan of the entries."""

    def __init__(self) -> None:
        self.problems: list[ChainProblem] = []
        self.prev = GENESIS_HASH
        self.expected_seq = 0
        self.count = 0
        self.hashes_at: dict[int, str] = {}
        self.checkpoint_seqs = set(LedgerCheckpoint.objects.values_list("seq", flat=True))

    def feed(self, page: list[ScanRow]) -> None:
        problems, prev, expected_seq = self.problems, self.prev, self.expected_seq
        checkpoint_seqs, sha256 = self.checkpoint_seqs, hashlib.sha256
        # The two hashes inline (digest, link): this runs once per entry.
        for seq, body, body_digest, prev_hash, entry_hash in page:
            expected_seq += 1
            if seq != expected_seq:
                problems.append(ChainProblem(seq, f"sequence gap: expected {expected_seq}"))
                expected_seq = seq
            if sha256(body).hexdigest() != body_digest:
                problems.append(ChainProblem(seq, "content does not match its digest"))
            if prev_hash != prev:
                problems.append(ChainProblem(seq, "previous-hash link is broken"))
            if sha256(f"{prev_hash}:{body_digest}".encode()).hexdigest() != entry_hash:
                problems.append(ChainProblem(seq, "hash does not match its link"))
            prev = entry_hash
            if seq in checkpoint_seqs:
                self.hashes_at[seq] = entry_hash
        self.count += len(page)
        self.prev, self.expected_seq = prev, expected_seq

    def finish(self) -> tuple[int, list[ChainProblem]]:
        problems, prev, expected_seq = self.problems, self.prev, self.expected_seq
        head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(pk=1)
        if head.seq != expected_seq or head.hash != prev:
            problems.append(ChainProblem(head.seq, "ledger head does not match the last entry"))
        for checkpoint in LedgerCheckpoint.objects.order_by("seq"):
            if checkpoint.seq == 0:
                continue
            if self.hashes_at.get(checkpoint.seq) != checkpoint.hash:
                problems.append(
                    ChainProblem(
                        checkpoint.seq,
                        f"differs from the head published at {checkpoint.published_at.isoformat()}",
                    )
                )
        problems.sort(key=lambda p: p.seq)
        return self.count, problems


def verify_chain(batch_size: int = 5000) -> tuple[int, list[ChainProblem]]:
    """Recompute every digest and link; compare with the head and with every
    published checkpoint. Returns (entries checked, problems in seq order)."""
    check = ChainCheck()
    for page in ledger_pages(batch_size):
        check.feed(page)
    return check.finish()


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
