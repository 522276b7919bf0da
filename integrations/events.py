"""What each event says (pure: no queries). The schemas are documented in
docs/integration.md; change them only by adding fields."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from compensation.models import LedgerKind

from .models import EventType

# Ledger kinds that bring paid time in (the platform's sales and the opening
# balance of existing members), as opposed to compensation credits.
PURCHASE_KINDS = frozenset(
    {
        LedgerKind.OPENING,
        LedgerKind.PURCHASE,
        LedgerKind.RENEWAL,
        LedgerKind.CARD_KEY,
        LedgerKind.TIER_CHANGE,
    }
)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def ledger_event_type(*, kind: str, minutes: int) -> str:
    """membership.debited for any entry that takes time away; purchased for
    sales-like kinds; credited for every other entry (compensation, staff
    goodwill, corrections that add)."""
    if minutes < 0:
        return EventType.MEMBERSHIP_DEBITED
    if kind in PURCHASE_KINDS:
        return EventType.MEMBERSHIP_PURCHASED
    return EventType.MEMBERSHIP_CREDITED


def ledger_event_data(entry, *, member_no: str) -> dict:
    return {
        "member": member_no,
        "entry": {
            "id": str(entry.public_id),
            "seq": entry.seq,
            "kind": entry.kind,
            "minutes": entry.minutes,
            "source": entry.source_kind,
            "source_ref": entry.source_ref,
            "covered_start": iso(entry.covered_start),
            "covered_end": iso(entry.covered_end),
            "policy_version": entry.policy_version,
            "hash": entry.hash,
            "created_at": iso(entry.created_at),
        },
        "expires_before": iso(entry.expires_before),
        "expires_after": iso(entry.expires_after),
    }


def appeal_event_data(appeal, *, member_no: str, outcome: str) -> dict:
    return {
        "member": member_no,
        "appeal": {
            "id": str(appeal.public_id),
            "outcome": outcome,
            "credited_minutes": appeal.credited_minutes or 0,
            "claimed_start": iso(appeal.claimed_start),
            "claimed_end": iso(appeal.claimed_end),
            "decided_at": iso(appeal.decided_at),
        },
    }


def incident_event_data(incident) -> dict:
    return {
        "incident": {
            "id": str(incident.public_id),
            "kind": incident.kind,
            "scope": incident.scope,
            "status": incident.status,
            "title_zh": incident.title_zh,
            "title_en": incident.title_en,
            "started_at": iso(incident.started_at),
            "ended_at": iso(incident.ended_at),
        }
    }


def checkpoint_event_data(checkpoint) -> dict:
    """A signed checkpoint of the ledger's transparency log, as published at
    /ledger/log/checkpoint: keep ``note`` to witness the log (docs §7)."""
    return {
        "checkpoint": {
            "size": checkpoint.size,
            "root": base64.b64encode(bytes(checkpoint.root)).decode("ascii"),
            "note": checkpoint.note,
            "published_at": iso(checkpoint.published_at),
        }
    }


def envelope(event) -> dict:
    """The JSON integrators receive, in the feed and in webhooks alike."""
    return {
        "id": str(event.public_id),
        "sequence": event.id,
        "type": event.type,
        "created_at": iso(event.created_at),
        "data": event.data,
    }
