"""Receipts a member can verify with a few lines of their own code, or in
the browser (static/js/receipt-verify.js reproduces the same hashing)."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from .ledger import canonical, entry_body
from .log_selectors import inclusion_proof, latest_log_checkpoint
from .models import (
    Incident,
    IncidentKind,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerHead,
    LedgerKind,
    LedgerLogCheckpoint,
    SourceKind,
)
from .selectors import (
    chain_digests,
    head_covering,
    incidents_by_ref,
    latest_published_head,
    member_entry_number,
)
from .status import source_label
from .usage_explain import weighting_explanation

VERIFY_HOWTO = (
    "1. body_digest = sha256(canonical JSON of 'entry': keys sorted, separators ',' and ':', UTF-8). "
    "2. hash = sha256(prev_hash + ':' + body_digest). "
    "3. h = hash; for each d in chain_to_head: h = sha256(h + ':' + d). "
    "4. h must equal published_head.hash, which must also appear on the public ledger page /ledger/. "
    "If published_head is null the entry is newer than the last published head (next_head_due "
    "says when the next one is due): steps 1-2 still prove the entry intact; download the "
    "receipt again after that time."
)

VERIFY_HOWTO_V2 = (
    "1. leaf = base64-decode(log.leaf_data); it must equal the canonical JSON of 'entry' (keys "
    "sorted, separators ',' and ':', UTF-8) and sha256(leaf) must equal body_digest. "
    "2. h = sha256(0x00 || leaf) (RFC 9162 leaf hash). "
    "3. Walk log.proof (base64 SHA-256 hashes) from leaf log.index to the root of the tree of the "
    "checkpoint's size, as RFC 9162 section 2.1.3.2 says (node = sha256(0x01 || left || right)). "
    "4. The result must equal the base64 root on line 3 of log.checkpoint, a C2SP signed note "
    "whose Ed25519 signature must verify with the log's verifier key, published at /ledger/ and "
    "/ledger/log/key. If log is null the entry is newer than the latest checkpoint "
    "(next_checkpoint_due says when the next one is due): download the receipt again after that."
)

# The beat entry that publishes heads (kamen_portal/settings.py).
PUBLISH_BEAT_KEY = "publish-ledger-head"


def publish_interval() -> timedelta | None:
    """How often a head is published, from the beat schedule; None when the
    schedule is not a plain interval (then no time can be promised)."""
    entry = getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get(PUBLISH_BEAT_KEY)
    schedule = entry and entry.get("schedule")
    if isinstance(schedule, timedelta):
        return schedule
    if isinstance(schedule, int | float) and schedule > 0:
        return timedelta(seconds=schedule)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return run_every if isinstance(run_every, timedelta) else None


def _next_due(*, now: datetime, last: datetime | None) -> datetime | None:
    """Beat runs the publisher every interval, so the next tick is the last
    publication plus a whole number of intervals (a tick with nothing new
    publishes nothing, which is why the last one can be several intervals
    old). With none yet, at most one interval from now."""
    interval = publish_interval()
    if interval is None:
        return None
    if last is None or last > now:
        return now + interval
    ticks = math.floor((now - last) / interval) + 1
    return last + ticks * interval


def next_head_due(*, now: datetime) -> datetime | None:
    """When the next chain head should be published."""
    latest = latest_published_head()
    return _next_due(now=now, last=latest.published_at if latest else None)


def next_checkpoint_due(*, now: datetime) -> datetime | None:
    """When the next signed checkpoint of the log should be published (the
    same beat task publishes heads and checkpoints)."""
    latest = latest_log_checkpoint()
    return _next_due(now=now, last=latest.published_at if latest else None)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def receipt_for(entry: LedgerEntry, *, now: datetime | None = None, version: int = 2) -> dict:
    """The JSON receipt of ``entry``. Version 2 (the default) proves the entry
    in the transparency log: its leaf data, an inclusion proof of O(log n)
    hashes and the signed checkpoint the proof leads to. Version 1 walks the
    hash chain to a published head (kept for tools written against it)."""
    if version == 1:
        return _receipt_v1(entry, now=now)
    body = entry_body(
        entry,
        member_no=entry.member.member_no,
        reverses_seq=entry.reverses.seq if entry.reverses_id else None,
    )
    checkpoint = latest_log_checkpoint()
    receipt: dict = {"receipt_version": 2, "entry": body, "body_digest": entry.body_digest}
    if checkpoint is not None and checkpoint.size >= entry.seq:
        index = entry.seq - 1  # leaf i is entry seq i + 1
        receipt["log"] = {
            "index": index,
            "leaf_data": _b64(canonical(body)),
            "proof": [_b64(h) for h in inclusion_proof(index=index, size=checkpoint.size)],
            "checkpoint": checkpoint.note,
        }
    else:
        receipt["log"] = None
        due = next_checkpoint_due(now=now or timezone.now())
        receipt["next_checkpoint_due"] = due.isoformat() if due else None
    receipt["how_to_verify"] = VERIFY_HOWTO_V2
    _add_weighting(receipt, entry)
    return receipt


def _add_weighting(receipt: dict, entry: LedgerEntry) -> None:
    if entry.weighting:
        # Outside the hashed body: the reader's sentence for the factor recorded in it.
        receipt["usage_weighting"] = {
            "factor": entry.weighting["factor"],
            "explanation": weighting_explanation(entry.weighting),
        }


def _receipt_v1(entry: LedgerEntry, *, now: datetime | None = None) -> dict:
    body = entry_body(
        entry,
        member_no=entry.member.member_no,
        reverses_seq=entry.reverses.seq if entry.reverses_id else None,
    )
    head = head_covering(seq=entry.seq)
    receipt = {
        "receipt_version": 1,
        "entry": body,
        "body_digest": entry.body_digest,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "published_head": (
            {"seq": head.seq, "hash": head.hash, "published_at": head.published_at.isoformat()}
            if head
            else None
        ),
        "chain_to_head": chain_digests(after_seq=entry.seq, through_seq=head.seq) if head else [],
        "how_to_verify": VERIFY_HOWTO,
    }
    _add_weighting(receipt, entry)
    if head is None:
        due = next_head_due(now=now or timezone.now())
        receipt["next_head_due"] = due.isoformat() if due else None
    return receipt


@dataclass(frozen=True)
class ReceiptFacts:
    """What a receipt page and its PDF say about one entry, in words."""

    entry: LedgerEntry
    summary: str
    source: str
    incident: Incident | None
    own_number: int
    own_count: int
    chain_length: int
    head: LedgerCheckpoint | None
    next_head_due: datetime | None
    # The signed log checkpoint that proves the entry (None: not yet in one).
    checkpoint: LedgerLogCheckpoint | None = None
    next_checkpoint_due: datetime | None = None

    @property
    def checkpoint_fingerprint(self) -> str:
        """A short, readable fingerprint of the checkpoint (its size and the
        first 16 characters of its base64 root), to compare with
        /ledger/log/checkpoint."""
        if self.checkpoint is None:
            return ""
        return f"{self.checkpoint.size}/{_b64(bytes(self.checkpoint.root))[:16]}"


def entry_summary(entry: LedgerEntry, *, incident: Incident | None = None) -> str:
    """The entry's kind in a sentence a member understands."""
    if entry.kind == LedgerKind.REVERSAL:
        seq = entry.reverses.seq if entry.reverses_id else "?"
        return _("Reversal of ledger entry #%(seq)s (a correction)") % {"seq": seq}
    if entry.kind == LedgerKind.ADJUSTMENT:
        if entry.minutes < 0:
            return _("Time taken back by staff")
        return _("Time added by staff")
    if entry.kind == LedgerKind.CREDIT:
        if entry.source_kind == SourceKind.DISCONNECT:
            return _("Credit for your disconnect")
        if entry.source_kind == SourceKind.APPEAL:
            return _("Credit from your approved appeal")
        if entry.source_kind == SourceKind.INCIDENT:
            if incident is not None and incident.kind == IncidentKind.MAINTENANCE:
                return _("Credit for maintenance")
            return _("Credit for an outage")
    return str(entry.get_kind_display())


def receipt_facts(entry: LedgerEntry, *, now: datetime) -> ReceiptFacts:
    incident = None
    if entry.source_kind == SourceKind.INCIDENT:
        incident = incidents_by_ref([entry.source_ref]).get(entry.source_ref)
    own_number, own_count = member_entry_number(entry=entry)
    head = head_covering(seq=entry.seq)
    checkpoint = latest_log_checkpoint()
    if checkpoint is not None and checkpoint.size < entry.seq:
        checkpoint = None
    chain = LedgerHead.objects.filter(pk=1).values_list("seq", flat=True).first() or entry.seq
    return ReceiptFacts(
        entry=entry,
        summary=entry_summary(entry, incident=incident),
        source=source_label(entry, {entry.source_ref: incident.kind} if incident else None),
        incident=incident,
        own_number=own_number,
        own_count=own_count,
        chain_length=chain,
        head=head,
        next_head_due=None if head else next_head_due(now=now),
        checkpoint=checkpoint,
        next_checkpoint_due=None if checkpoint else next_checkpoint_due(now=now),
    )
