"""Incidents: detected node outages and mass drops, declared outages and
maintenance, and the chunked, resumable payout of incident compensation."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from kamen_portal.queue import enqueue_on_commit
from members.models import MemberProfile, MemberStatus, NotificationKind, User
from members.services.notify import notify_broadcast, notify_subscribers

from .. import notices
from ..models import (
    DECLARED_KINDS,
    Claim,
    Disconnect,
    Incident,
    IncidentKind,
    IncidentMember,
    IncidentScope,
    IncidentStatus,
    Node,
    PayoutState,
    SourceKind,
)
from ..store import get_store, split_key
from .credit import ClaimRequest, compensation_credit_many
from .ledger_publish import ledger_checkpoint_soon
from .policy import policy_current

PAYOUT_CHUNK = 2000
# Incidents whose payout is paid per affected member over the incident window.
WINDOW_KINDS = (IncidentKind.NODE_SILENT, IncidentKind.OUTAGE, IncidentKind.MAINTENANCE)

AUTO_TITLES = {
    IncidentKind.NODE_SILENT: ("服务节点 %(node)s 中断", "Node %(node)s outage"),
    IncidentKind.MASS_DROP: ("服务节点 %(node)s 大量掉线", "Mass disconnect on node %(node)s"),
}


def _auto_titles(kind: str, node: Node) -> dict:
    zh, en = AUTO_TITLES[kind]
    return {"title_zh": zh % {"node": node.name}, "title_en": en % {"node": node.name}}


def incident_open_detected(
    *, kind: str, node: Node, started_at: datetime, member_ids: list[int], ended_at=None
) -> Incident | None:
    """Open (or, with ``ended_at``, record as closed) a detected incident of
    ``node``. Returns None when the node already has an open detected one."""
    status = IncidentStatus.CLOSED if ended_at else IncidentStatus.OPEN
    with transaction.atomic():
        if (
            status == IncidentStatus.OPEN
            and Incident.objects.filter(auto_node=node, status=IncidentStatus.OPEN).exists()
        ):
            return None
        incident = Incident.objects.create(
            kind=kind,
            status=status,
            scope=IncidentScope.NODES,
            auto_node=node,
            started_at=started_at,
            ended_at=ended_at,
            **_auto_titles(kind, node),
        )
        incident.nodes.add(node)
        incident_add_members(incident=incident, member_ids=member_ids)
        if status == IncidentStatus.OPEN:
            enqueue_on_commit("compensation.tasks.notify_incident", incident.pk, "declared")
        return incident


def incident_add_members(*, incident: Incident, member_ids) -> None:
    IncidentMember.objects.bulk_create(
        [IncidentMember(incident=incident, member_id=m) for m in set(member_ids)],
        ignore_conflicts=True,
        batch_size=2000,
    )


def member_ids_for_keys(keys: list[str]) -> dict[str, int]:
    """Map store keys ("<member_no>|<session>") to member ids, one query."""
    numbers = {split_key(k)[0] for k in keys}
    by_no = dict(MemberProfile.objects.filter(member_no__in=numbers).values_list("member_no", "pk"))
    return {k: by_no[split_key(k)[0]] for k in keys if split_key(k)[0] in by_no}


def incident_close(*, incident: Incident, ended_at: datetime, now: datetime) -> None:
    """Close an incident and start paying everyone it affected."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status != IncidentStatus.OPEN:
            return
        incident.status = IncidentStatus.CLOSED
        incident.ended_at = ended_at
        incident.save(update_fields=["status", "ended_at", "updated_at"])
        if incident.kind in WINDOW_KINDS:
            incident_payout_start(incident=incident)
        enqueue_on_commit("compensation.tasks.notify_incident", incident.pk, "resolved")


def incident_cancel(*, incident: Incident) -> None:
    """A detected node outage that was not one (the node was buffering and
    replayed with no gap in event time): withdrawn, nobody is paid for it."""
    Incident.objects.filter(pk=incident.pk, status=IncidentStatus.OPEN).update(
        status=IncidentStatus.CANCELLED
    )
    Disconnect.objects.filter(incident=incident).update(incident=None)


def incident_declare(
    *,
    kind: str,
    scope: str,
    node_ids: list[int],
    started_at: datetime,
    ended_at: datetime | None,
    ratio: Decimal | None,
    title_zh: str,
    title_en: str,
    description_zh: str = "",
    description_en: str = "",
    actor: User | None,
    now: datetime,
) -> Incident:
    """Staff declare an outage or maintenance window. Once its end has
    passed it closes and everyone in scope is compensated for the window."""
    if kind not in DECLARED_KINDS:
        raise ValueError("Only outages, degraded performance and maintenance are declared.")
    with transaction.atomic():
        incident = Incident(
            kind=kind,
            scope=scope,
            started_at=started_at,
            ended_at=ended_at,
            ratio=ratio,
            title_zh=title_zh,
            title_en=title_en,
            description_zh=description_zh,
            description_en=description_en,
            declared_by=actor,
            status=IncidentStatus.OPEN,
        )
        incident.full_clean()
        incident.save()
        if node_ids:
            incident.nodes.set(node_ids)
        if ended_at is not None and ended_at <= now:
            incident_close(incident=incident, ended_at=ended_at, now=now)
        else:
            enqueue_on_commit("compensation.tasks.notify_incident", incident.pk, "declared")
        return incident


def _declared_affected(incident: Incident, *, threshold: timedelta) -> None:
    if incident.scope == IncidentScope.ALL:
        # Everyone whose paid membership overlapped the window; the credit
        # service clips each member to their own paid period.
        # One INSERT ... SELECT: 100,000 members never pass through Python.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO compensation_incidentmember (incident_id, member_id) "
                "SELECT %s, id FROM members_memberprofile WHERE status = %s AND expires_at > %s "
                "ON CONFLICT DO NOTHING",
                [incident.pk, MemberStatus.ACTIVE, incident.started_at],
            )
        return
    store = get_store()
    for node in incident.nodes.all():
        keys = store.seen_since(node.pk, incident.started_at - threshold)
        incident_add_members(incident=incident, member_ids=member_ids_for_keys(keys).values())


def incident_payout_start(*, incident: Incident) -> None:
    Incident.objects.filter(pk=incident.pk).update(payout_state=PayoutState.RUNNING)
    enqueue_on_commit("compensation.tasks.pay_incident", incident.pk)


def _unpaid_members(incident: Incident):
    paid = Claim.objects.filter(
        source_kind=SourceKind.INCIDENT,
        source_ref=str(incident.public_id),
        member_id=OuterRef("member_id"),
    )
    return (
        IncidentMember.objects.filter(incident=incident)
        .annotate(paid=Exists(paid))
        .filter(paid=False)
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )


# Fields staff may edit on a declared incident while it is open.
INCIDENT_EDITABLE = (
    "kind",
    "scope",
    "started_at",
    "ended_at",
    "ratio",
    "title_zh",
    "title_en",
    "description_zh",
    "description_en",
)


def incident_update(
    *, incident: Incident, changes: dict, node_ids: list[int] | None, now: datetime
) -> Incident:
    """Staff edit an open declared incident; once its end has passed it
    closes and is paid like any other."""
    if not incident.is_declared or incident.status != IncidentStatus.OPEN:
        raise ValueError("Only open declared incidents can be edited.")
    with transaction.atomic():
        for field in INCIDENT_EDITABLE:
            if field in changes:
                setattr(incident, field, changes[field])
        incident.save()
        if node_ids is not None:
            incident.nodes.set(node_ids)
    if incident.ended_at is not None and incident.ended_at <= now:
        incident_close(incident=incident, ended_at=incident.ended_at, now=now)
    return incident


def _threshold() -> timedelta:
    """Members seen within the policy threshold before an incident were on it."""
    return timedelta(minutes=policy_current().threshold_minutes)


def incident_payout_plan(
    *, incident_id: int, threshold: timedelta | None = None
) -> list[list[int]]:
    """Chunks of affected members not yet paid. Safe to call again at any
    time: after a crash it returns exactly the remaining work."""
    incident = Incident.objects.get(pk=incident_id)
    if incident.status != IncidentStatus.CLOSED or incident.kind not in WINDOW_KINDS:
        return []
    if incident.is_declared and not IncidentMember.objects.filter(incident=incident).exists():
        _declared_affected(incident, threshold=threshold or _threshold())
    unpaid = list(_unpaid_members(incident))
    if not unpaid:
        Incident.objects.filter(pk=incident.pk).update(payout_state=PayoutState.DONE)
    return [unpaid[i : i + PAYOUT_CHUNK] for i in range(0, len(unpaid), PAYOUT_CHUNK)]


def incident_pay_members(*, incident_id: int, member_ids: list[int], now: datetime) -> int:
    """Pay one chunk: each member the incident window (minus anything already
    covered). Idempotent per member; returns how many were newly decided."""
    incident = Incident.objects.get(pk=incident_id)
    if incident.status != IncidentStatus.CLOSED or incident.ended_at is None:
        return 0
    ref = str(incident.public_id)
    requests = [
        ClaimRequest(
            member_id=member_id,
            intervals=[(incident.started_at, incident.ended_at)],
            source_kind=SourceKind.INCIDENT,
            source_ref=ref,
            idempotency_key=f"incident:{ref}:{member_id}",
            ratio=incident.ratio,
        )
        for member_id in member_ids
    ]
    with transaction.atomic():
        claims = compensation_credit_many(requests=requests, now=now)
        by_member = {c.member_id: c for c in claims}
        attached = list(
            Disconnect.objects.filter(incident=incident, member_id__in=member_ids).only(
                "pk", "member_id"
            )
        )
        for disconnect in attached:
            claim = by_member.get(disconnect.member_id)
            if claim is not None:
                disconnect.outcome = claim.outcome
                disconnect.credited_minutes = claim.credited_minutes
                disconnect.withheld_minutes = claim.withheld_minutes
                disconnect.outcome_reason = "incident"
        Disconnect.objects.bulk_update(
            attached, ["outcome", "credited_minutes", "withheld_minutes", "outcome_reason"]
        )
        # Two index counts, not an anti-join over every affected member: this
        # runs after every chunk and must not grow with the incident.
        paid = Claim.objects.filter(source_kind=SourceKind.INCIDENT, source_ref=ref).count()
        if paid >= IncidentMember.objects.filter(incident=incident).count():
            Incident.objects.filter(pk=incident.pk).update(payout_state=PayoutState.DONE)
        if any(c.entry_id for c in claims):
            # Issue 23: the chunk's entries get a signed checkpoint soon
            # after this commit (coalesced over the payout's chunks).
            ledger_checkpoint_soon()
    return len(claims)


NOTICE_CHUNK = 5000


def incident_affected_user_ids(*, incident: Incident, threshold: timedelta) -> list[int]:
    """Everyone an incident affects (declared: by scope; detected: the
    snapshot), as user ids for notifications."""
    if incident.is_declared and not IncidentMember.objects.filter(incident=incident).exists():
        _declared_affected(incident, threshold=threshold or _threshold())
    return list(
        IncidentMember.objects.filter(incident=incident)
        .order_by("member_id")
        .values_list("member__user_id", flat=True)
    )


def incident_notify(
    *, incident_id: int, event: str, now: datetime, threshold: timedelta | None = None
) -> int:
    """Tell every affected member that an incident was declared or resolved,
    in chunks (one transaction each; safe to run again: deduplicated)."""

    incident = Incident.objects.get(pk=incident_id)
    kind = (
        NotificationKind.INCIDENT_DECLARED
        if event == "declared"
        else NotificationKind.INCIDENT_RESOLVED
    )
    # Degraded performance pays no window (members' own disconnects are
    # credited as usual), so only status subscribers hear of it.
    user_ids = (
        []
        if incident.kind == IncidentKind.DEGRADED
        else incident_affected_user_ids(incident=incident, threshold=threshold or _threshold())
    )
    recorded = 0
    for start in range(0, len(user_ids), NOTICE_CHUNK):
        with transaction.atomic():
            recorded += notify_broadcast(
                user_ids=user_ids[start : start + NOTICE_CHUNK],
                kind=kind,
                key_prefix=f"incident:{incident.public_id}:{event}",
                render=notices.incident_render(incident, event),
                now=now,
            )
    # Members subscribed to the status page hear of it too (once: the
    # affected ones already have their own notice).
    recorded += notify_subscribers(
        kind=NotificationKind.STATUS_NOTICE,
        key_prefix=f"status:{incident.public_id}:{event}",
        render=notices.status_incident_render(incident, event),
        now=now,
        exclude_user_ids=user_ids,
    )
    return recorded
