"""The mediation evidence bundle: everything a third party (e.g. a consumer
association, 12315) needs, in one ZIP, with a SHA-256 for every file."""

from __future__ import annotations

import hashlib
import json
import tempfile
import unicodedata
import zipfile

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from compensation.ledger import entry_body
from compensation.log_keys import log_verifier, log_verifiers
from compensation.models import Policy
from compensation.receipts import receipt_for
from kamen_portal.http import portal_url
from members.services.exports import iso as _iso

from .evidence import zip_member_name
from .exports import appeal_timeline
from .models import Appeal
from .selectors import appeal_context_records


def _shown(text: str) -> str:
    """What the summary page shows of a free text: the words, without the
    control and bidi characters that would let it reorder or hide what a
    reader sees (RLO makes "gnp.exe" read "exe.png"). The JSON files keep the
    text exactly as stored."""
    return "".join(ch for ch in text or "" if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def build_bundle(appeal: Appeal) -> tempfile.SpooledTemporaryFile:
    """Return a spooled temporary file holding the ZIP (rewound)."""
    disconnects, entries = appeal_context_records(appeal=appeal)
    policy = (
        Policy.objects.filter(published_at__lte=appeal.created_at).order_by("-version").first()
        or Policy.objects.order_by("version").first()
    )
    events = list(appeal.events.select_related("actor").order_by("created_at", "pk"))
    evidence = list(appeal.evidence.order_by("created_at", "pk"))
    generated_at = timezone.now()

    files: dict[str, bytes] = {}
    evidence_rows = []
    for i, item in enumerate(evidence, start=1):
        with item.file.open("rb") as handle:
            data = handle.read()
        path = f"evidence/{i:02d}-{zip_member_name(item.original_name)}"
        files[path] = data
        evidence_rows.append(
            {
                "file": path,
                "kind": item.kind,
                "sha256": hashlib.sha256(data).hexdigest(),
                "uploaded_at": _iso(item.created_at),
                "size": len(data),
            }
        )
    timeline = appeal_timeline(appeal)
    appeal_json = {
        "appeal": str(appeal.public_id),
        "member": appeal.member.member_no,
        "status": appeal.status,
        "claimed_start": _iso(appeal.claimed_start),
        "claimed_end": _iso(appeal.claimed_end),
        "node": appeal.node.name if appeal.node else appeal.service,
        "description": appeal.description,
        "filed_at": _iso(appeal.created_at),
        "filing_deadline": _iso(appeal.deadline),
        "first_response_due": _iso(appeal.sla_due_at),
        "first_response_at": _iso(appeal.first_response_at),
        "decided_at": _iso(appeal.decided_at),
        "decision_reason": appeal.decision_reason,
        "credited_minutes": appeal.credited_minutes,
        "escalated_at": _iso(appeal.escalated_at),
    }
    disconnects_json = [
        {
            "id": str(d.public_id),
            "node": d.node.name,
            "start": _iso(d.started_at),
            "end": _iso(d.ended_at),
            "status": d.status,
            "outcome": d.outcome,
            "credited_minutes": d.credited_minutes,
            "withheld_minutes": d.withheld_minutes,
            "incident": str(d.incident.public_id) if d.incident else None,
        }
        for d in disconnects
    ]
    ledger_json = [
        {
            **entry_body(
                e,
                member_no=appeal.member.member_no,
                reverses_seq=e.reverses.seq if e.reverses_id else None,
            ),
            "body_digest": e.body_digest,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in entries
    ]
    policy_json = (
        {
            field.name: str(getattr(policy, field.name))
            for field in Policy._meta.fields
            if field.name not in ("id", "published_by")
        }
        if policy
        else {}
    )

    files["appeal.json"] = json.dumps(appeal_json, ensure_ascii=False, indent=2).encode()
    files["timeline.json"] = json.dumps(timeline, ensure_ascii=False, indent=2).encode()
    files["disconnects.json"] = json.dumps(disconnects_json, ensure_ascii=False, indent=2).encode()
    files["ledger.json"] = json.dumps(ledger_json, ensure_ascii=False, indent=2).encode()
    files["policy.json"] = json.dumps(policy_json, ensure_ascii=False, indent=2).encode()
    # Each entry's version 2 receipt (its inclusion proof and the signed
    # checkpoint) and the log's verifier key: a mediator checks them with
    # kamen-verify alone, without trusting the portal or this ZIP's sender.
    pending = []  # entries newer than the latest checkpoint: no proof yet
    for e in entries:
        receipt = receipt_for(e, now=generated_at)
        if receipt["log"] is None:
            pending.append(e.seq)
        files[f"receipts/{e.seq}.json"] = json.dumps(receipt, ensure_ascii=False, indent=2).encode()
    files["ledger-log-key.txt"] = (log_verifier().vkey + "\n").encode()
    previous = [v.vkey for v in log_verifiers()[1:]]
    if previous:
        files["ledger-log-previous-keys.txt"] = "".join(f"{k}\n" for k in previous).encode()
    with translation.override(appeal.member.language):
        files["summary.html"] = render_to_string(
            "appeals/bundle_summary.html",
            {
                "LANGUAGE_CODE": appeal.member.language,
                "appeal_url": portal_url(
                    reverse("appeals:detail", kwargs={"public_id": appeal.public_id})
                ),
                "ledger_url": portal_url(reverse("compensation:ledger")),
                "appeal": appeal,
                "description": _shown(appeal.description),
                "decision_reason": _shown(appeal.decision_reason),
                "events": [
                    {
                        "created_at": e.created_at,
                        "kind": e.get_kind_display(),
                        "by": e.actor_role_label,
                        "message": _shown(e.message),
                    }
                    for e in events
                ],
                "evidence": evidence_rows,
                "disconnects": disconnects,
                "entries": entries,
                "pending_receipts": pending,
                "policy": policy,
                "generated_at": generated_at,
            },
        ).encode()
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in sorted(files.items())
    )
    files["SHA256SUMS.txt"] = sums.encode()

    # Returned open: FileResponse streams and then closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    spool.seek(0)
    return spool
