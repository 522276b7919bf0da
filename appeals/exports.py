"""The appeals app's part of a member's data export: every appeal with its
timeline and evidence files (registered with members.exports in
AppealsConfig.ready)."""

from __future__ import annotations

import json

from members.models import MemberProfile, User
from members.services.exports import iso

from .evidence import zip_member_name
from .models import Appeal


def appeal_timeline(appeal: Appeal) -> list[dict]:
    """The one serialisation of an appeal's timeline (export and mediation
    bundle alike)."""
    return [
        {
            "when": iso(e.created_at),
            "event": e.kind,
            "by": e.actor_role,
            "from": e.old_status,
            "to": e.new_status,
            "message": e.message,
        }
        for e in appeal.events.all()
    ]


def export_section(
    user: User, member: MemberProfile | None, files: dict[str, bytes], tables: dict[str, list]
) -> None:
    appeals_full = []
    if member is not None:
        for a in (
            Appeal.objects.filter(member=member)
            .prefetch_related("events", "evidence")
            .order_by("created_at")
        ):
            evidence = []
            for i, item in enumerate(a.evidence.all(), start=1):
                path = f"appeals/{a.short_id}/{i:02d}-{zip_member_name(item.original_name)}"
                with item.file.open("rb") as handle:
                    files[path] = handle.read()
                evidence.append({"file": path, "sha256": item.sha256, "kind": item.kind})
            row = {
                "id": str(a.public_id),
                "status": a.status,
                "claimed_start": iso(a.claimed_start),
                "claimed_end": iso(a.claimed_end),
                "description": a.description,
                "filed_at": iso(a.created_at),
                "decided_at": iso(a.decided_at),
                "decision_reason": a.decision_reason,
                "credited_minutes": a.credited_minutes,
            }
            tables["appeals"].append(row)
            appeals_full.append({**row, "evidence": evidence, "timeline": appeal_timeline(a)})
    files["appeals.json"] = json.dumps(appeals_full, ensure_ascii=False, indent=2).encode()
