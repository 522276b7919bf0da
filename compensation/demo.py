"""Demo history for `seed_demo`: a little real past, produced by the real
ingest, detection and compensation code, so a new user sees disconnects,
credits, an incident and receipts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from members.models import MemberProfile

from .models import Incident, IncidentKind, IncidentScope, Node
from .services.detection import detection_run
from .services.disconnects import disconnect_compensate
from .services.incident_updates import incident_update_post
from .services.incidents import incident_declare, incident_pay_members, incident_payout_plan
from .services.ingest import heartbeats_ingest
from .services.ledger_publish import ledger_publish_head
from .services.nodes import node_create, node_revoke, node_rotate_token

HISTORY_NODE = "demo-history-node"
DEMO_NODE = "demo-node"
MAINTENANCE_TITLE = "计划维护（演示）"
HISTORY_DAYS = 30


def _beats(member_no: str, base: datetime, minutes) -> list[dict]:
    return [
        {"member": member_no, "session": "demo", "at": (base + timedelta(minutes=m)).isoformat()}
        for m in minutes
    ]


def seed_compensation_history(*, now: datetime, stdout) -> str:
    """Create the demo nodes and, once, the demo history. Returns a fresh
    token for ``demo-node`` (tokens are stored hashed, so each run rotates)."""
    # The demo's nodes have served for HISTORY_DAYS: the status page's bars
    # show that past (the maintenance, the quiet days), not "no data".
    added_at = now - timedelta(days=HISTORY_DAYS)
    demo = Node.objects.filter(name=DEMO_NODE).first()
    if demo is None:
        demo, token = node_create(
            name=DEMO_NODE, description="Demo node: send it heartbeats", now=now, added_at=added_at
        )
    else:
        token = node_rotate_token(node=demo, now=now)

    members = {
        p.user.email: p
        for p in MemberProfile.objects.filter(
            user__email__in=["member1@example.com", "member2@example.com", "member3@example.com"]
        ).select_related("user")
    }
    if Node.objects.filter(name=HISTORY_NODE).exists() or len(members) < 3:
        return token

    history, _ = node_create(
        name=HISTORY_NODE, description="Demo history (retired)", now=now, added_at=added_at
    )
    base = (now - timedelta(days=2)).replace(second=0, microsecond=0)
    m1, m2, m3 = (members[f"member{i}@example.com"].member_no for i in (1, 2, 3))
    items = (
        _beats(m1, base, [*range(0, 31), *range(47, 61)])  # a 17-minute disconnect
        + _beats(m2, base, [*range(0, 21), *range(28, 61)])  # an 8-minute one
        + _beats(m3, base, range(0, 61))  # all fine
    )
    for member_no in (m1, m2, m3):
        items.append(
            {
                "member": member_no,
                "session": "demo",
                "at": (base + timedelta(minutes=61)).isoformat(),
                "state": "ended",
            }
        )
    heartbeats_ingest(node=history, payload={"heartbeats": items}, now=now)
    detection_run(now=now)
    for disconnect in history.disconnects.all():
        disconnect_compensate(disconnect_id=disconnect.pk, now=now)
    # Retired: it must not later look like a node that went silent.
    node_revoke(node=history, now=now)

    if not Incident.objects.filter(title_zh=MAINTENANCE_TITLE).exists():
        start = (now - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        incident = incident_declare(
            kind=IncidentKind.MAINTENANCE,
            scope=IncidentScope.ALL,
            node_ids=[],
            started_at=start,
            ended_at=start + timedelta(minutes=30),
            ratio=None,
            title_zh=MAINTENANCE_TITLE,
            title_en="Scheduled maintenance (demo)",
            description_zh="数据库升级，全体会员按补偿政策自动补时。",
            description_en="Database upgrade; every member is credited automatically under the policy.",
            actor=None,
            now=now,
        )
        for chunk in incident_payout_plan(incident_id=incident.pk, threshold=timedelta(minutes=5)):
            incident_pay_members(incident_id=incident.pk, member_ids=chunk, now=now)
        # Its public timeline on /status/ (as staff would post it in admin).
        for at, stage, zh, en in (
            (
                start - timedelta(days=1),
                "scheduled",
                "将升级数据库约 30 分钟。",
                "A 30-minute database upgrade.",
            ),
            (start, "in_progress", "升级已开始。", "The upgrade has started."),
            (
                start + timedelta(minutes=30),
                "completed",
                "升级完成，服务已恢复。",
                "Done; service is back.",
            ),
        ):
            incident_update_post(
                incident=incident, status=stage, message_zh=zh, message_en=en, actor=None, now=at
            )
    ledger_publish_head(now=timezone.now())
    stdout.write(
        "demo history: 2 disconnects, 1 maintenance window, credits and a published ledger head"
    )
    return token
