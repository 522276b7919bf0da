"""The compensation app's part of a member's data export: disconnects,
ledger entries with a verifiable receipt each, and coupons (registered with
members.exports in CompensationConfig.ready)."""

from __future__ import annotations

import json

from members.models import MemberProfile, User
from members.services.exports import iso

from .models import Coupon, Disconnect, LedgerEntry
from .receipts import receipt_for


def export_section(
    user: User, member: MemberProfile | None, files: dict[str, bytes], tables: dict[str, list]
) -> None:
    if member is None:
        return
    for d in (
        Disconnect.objects.filter(member=member)
        .select_related("node", "incident")
        .order_by("started_at")
    ):
        tables["disconnects"].append(
            {
                "id": str(d.public_id),
                "node": d.node.name,
                "session": d.session_id,
                "start": iso(d.started_at),
                "end": iso(d.ended_at),
                "status": d.status,
                "incident": str(d.incident.public_id) if d.incident else "",
                "outcome": d.outcome,
                "credited_minutes": d.credited_minutes,
                "withheld_minutes": d.withheld_minutes,
            }
        )
    for entry in (
        LedgerEntry.objects.filter(member=member)
        .select_related("member", "reverses")
        .order_by("seq")
    ):
        tables["ledger"].append(
            {
                "seq": entry.seq,
                "id": str(entry.public_id),
                "kind": entry.kind,
                "minutes": entry.minutes,
                "source": entry.source_kind,
                "covered_start": iso(entry.covered_start),
                "covered_end": iso(entry.covered_end),
                "policy_version": entry.policy_version,
                "created_at": iso(entry.created_at),
                "hash": entry.hash,
            }
        )
        files[f"receipts/receipt-{entry.seq}.json"] = json.dumps(
            receipt_for(entry, version=1), ensure_ascii=False, indent=2
        ).encode()
    for c in Coupon.objects.filter(member=member).order_by("issued_at"):
        tables["coupons"].append(
            {
                "code": c.code,
                "value": str(c.value),
                "issued_at": iso(c.issued_at),
                "expires_at": iso(c.expires_at),
                "redeemed_at": iso(c.redeemed_at),
                "reason": c.reason,
            }
        )
