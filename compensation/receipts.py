"""Receipts a member can verify with a few lines of their own code."""

from __future__ import annotations

from .ledger import entry_body
from .models import LedgerEntry
from .selectors import chain_digests, head_covering
from .usage_explain import weighting_explanation

VERIFY_HOWTO = (
    "1. body_digest = sha256(canonical JSON of 'entry': keys sorted, separators ',' and ':', UTF-8). "
    "2. hash = sha256(prev_hash + ':' + body_digest). "
    "3. h = hash; for each d in chain_to_head: h = sha256(h + ':' + d). "
    "4. h must equal published_head.hash, which must also appear on the public ledger page /ledger/. "
    "If published_head is null the entry is newer than the last published head (heads are "
    "published hourly): steps 1-2 still prove the entry intact; download the receipt again later."
)


def receipt_for(entry: LedgerEntry) -> dict:
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
    if entry.weighting:
        # Outside the hashed body: the reader's sentence for the factor recorded in it.
        receipt["usage_weighting"] = {
            "factor": entry.weighting["factor"],
            "explanation": weighting_explanation(entry.weighting),
        }
    return receipt
