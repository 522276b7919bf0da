"""After the campaign: the portal's state against the model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta

from ..harness import ROOT
from .plan import DROP_NODE, INCIDENT_NODES, ROUND_EVENT_S, Expected, Plan

CREDITED = re.compile(r"^(\d+) minutes credited$")


def _round(value: datetime, e0: datetime) -> float:
    return (value - e0).total_seconds() / ROUND_EVENT_S


def received_emails(sink_file) -> list[dict]:
    if not sink_file.exists():
        return []
    return [json.loads(line) for line in sink_file.read_text().splitlines() if line.strip()]


def discrepancies(
    *,
    plan: Plan,
    model: Expected,
    e0: datetime,
    members,
    nodes,
    initial,
    sink_file,
    store,
    verify: bool = True,
) -> tuple[list[str], dict]:
    """``members``: MemberProfile per global index; ``initial``: their expiry
    before the run. Returns (discrepancies, figures)."""
    from compensation.models import Claim, Disconnect, Incident, IncidentStatus
    from members.models import MemberProfile

    problems: list[str] = []
    by_pk = {m.pk: i for i, m in enumerate(members)}
    # 1. Credited minutes and expiry, member by member.
    claims: dict[int, list[int]] = {}
    for member_id, minutes in Claim.objects.filter(
        member_id__in=list(by_pk), credited_minutes__gt=0
    ).values_list("member_id", "credited_minutes"):
        claims.setdefault(by_pk[member_id], []).append(minutes)
    expiry = dict(MemberProfile.objects.filter(pk__in=list(by_pk)).values_list("pk", "expires_at"))
    for i, member in enumerate(members):
        want = sorted(model.credits.get(i, []))
        got = sorted(claims.get(i, []))
        if want != got:
            problems.append(f"member {member.member_no}: credits {got} != model {want}")
        should = initial[i] + timedelta(minutes=sum(want))
        if expiry[member.pk] != should:
            problems.append(f"member {member.member_no}: expiry {expiry[member.pk]} != {should}")
    # 2. Every ledger entry verifies (the portal's own verifier, run apart).
    if verify:
        verified = subprocess.run(
            [sys.executable, "manage.py", "verify_ledger"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if verified.returncode != 0:
            problems.append(f"verify_ledger failed: {(verified.stdout + verified.stderr)[-500:]}")
    # 3. E-mail: each credit of the model exactly once at the sink, and no
    #    message of any kind twice.
    emails = received_emails(sink_file)
    credited: dict[str, Counter] = {}
    for message in emails:
        found = CREDITED.match(message["subject"])
        if found:
            for to in message["to"]:
                credited.setdefault(to, Counter())[int(found.group(1))] += 1
    for i, member in enumerate(members):
        want = Counter(model.credits.get(i, []))
        got = credited.get(member.user.email, Counter())
        if want != got:
            problems.append(
                f"member {member.member_no}: credit e-mails {dict(got)} != model {dict(want)}"
            )
    twice = [
        key
        for key, n in Counter((tuple(m["to"]), m["subject"], m["body"]) for m in emails).items()
        if n > 1
    ]
    problems.extend(f"e-mail received twice: {to} {subject!r}" for to, subject, _b in twice)
    # 4. Detection saw exactly what the accepted heartbeats say.
    node_index = {node.pk: n for n, (node, _token) in enumerate(nodes)}
    seen_disconnects = set()
    for d in Disconnect.objects.filter(node_id__in=list(node_index)).select_related("member"):
        n = node_index[d.node_id]
        if n == DROP_NODE:
            if d.ended_at is None:
                problems.append(f"disconnect of {d.member.member_no} still open")
                continue
            seen_disconnects.add(
                (by_pk[d.member_id], round(_round(d.started_at, e0)), round(_round(d.ended_at, e0)))
            )
        elif d.incident_id is None:
            problems.append(f"node {n}: disconnect of {d.member.member_no} outside any outage")
    if seen_disconnects != model.disconnects:
        problems.append(
            f"disconnects: missing {sorted(model.disconnects - seen_disconnects)[:5]}, "
            f"unexpected {sorted(seen_disconnects - model.disconnects)[:5]}"
        )
    seen_incidents = {
        (node_index[i.auto_node_id], round(_round(i.started_at, e0)), round(_round(i.ended_at, e0)))
        for i in Incident.objects.filter(auto_node_id__in=list(node_index)).exclude(
            status=IncidentStatus.CANCELLED
        )
        if i.ended_at is not None
    }
    open_incidents = Incident.objects.filter(
        auto_node_id__in=list(node_index), status=IncidentStatus.OPEN
    ).count()
    if open_incidents:
        problems.append(f"{open_incidents} incidents still open")
    if seen_incidents != model.incidents:
        problems.append(
            f"incidents: missing {sorted(model.incidents - seen_incidents)}, "
            f"unexpected {sorted(seen_incidents - model.incidents)}"
        )
    # Every session's last accepted beat is the store's last-seen time.
    last = e0 + timedelta(seconds=(plan.rounds - 1) * ROUND_EVENT_S)
    stale = 0
    for n, (node, _token) in enumerate(nodes):
        live = dict(store.redis.zrange(store._k(node.pk, "live"), 0, -1, withscores=True))
        for i in range(plan.members_per_node):
            no = members[n * plan.members_per_node + i].member_no
            score = live.get(f"{no}|s-{no}")
            if score is None or int(score) != int(last.timestamp() * 1_000_000):
                stale += 1
    if stale:
        problems.append(f"{stale} sessions' last accepted beat not in the heartbeat store")
    figures = {
        "emails_received": len(emails),
        "credit_emails_expected": sum(len(v) for v in model.credits.values()),
        "credits_expected": sum(len(v) for v in model.credits.values()),
        "credited_minutes_expected": sum(sum(v) for v in model.credits.values()),
        "disconnects_expected": len(model.disconnects),
        "incidents_expected": len(model.incidents),
        "incident_nodes": INCIDENT_NODES,
    }
    return problems, figures
