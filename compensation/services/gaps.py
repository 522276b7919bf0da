"""The first half of a detection pass: gaps that ingest found (a session or a
whole node silent between two beats) become closed disconnects and node
outages. Bulk by design: a regional outage closes thousands of gaps in one
pass, so the writes are a handful of statements per batch, not per gap."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction

from kamen_portal.queue import enqueue_many_on_commit

from ..models import (
    Disconnect,
    DisconnectStatus,
    Incident,
    IncidentKind,
    IncidentStatus,
    Node,
    PayoutState,
)
from ..store import Gap, split_key
from .incidents import (
    WINDOW_KINDS,
    incident_add_members,
    incident_close,
    incident_open_detected,
    incident_payout_start,
    member_ids_for_keys,
)

GAP_BATCH = 2000
# Closed disconnects are paid in chunks of this many per task message: a
# regional outage is tens of messages, not thousands of broker round trips.
PAY_CHUNK = 100


def drain_gaps(store, threshold: timedelta, now: datetime, report) -> None:
    while True:
        with store.gap_batch(GAP_BATCH) as gaps:
            if not gaps:
                return
            with transaction.atomic():
                _process_gaps(gaps, threshold, now, report)
            report.gaps += len(gaps)


def _outages(session_gaps: list[Gap], threshold: timedelta) -> dict[int, list[Incident]]:
    outages: dict[int, list[Incident]] = defaultdict(list)
    for incident in Incident.objects.filter(
        auto_node_id__in={g.node_id for g in session_gaps},
        kind=IncidentKind.NODE_SILENT,
        status__in=[IncidentStatus.OPEN, IncidentStatus.CLOSED],
        started_at__lte=max(g.start for g in session_gaps) + threshold,
    ).order_by("-started_at"):
        outages[incident.auto_node_id].append(incident)
    return outages


def _disconnects(session_gaps: list[Gap], member_ids) -> dict[tuple, Disconnect]:
    """The disconnects these gaps may already have, by their unique key."""
    return {
        (d.node_id, d.member_id, d.session_id, d.started_at): d
        for d in Disconnect.objects.filter(
            node_id__in={g.node_id for g in session_gaps},
            member_id__in=set(member_ids),
            started_at__in={g.start for g in session_gaps},
        ).select_related("incident")
    }


def _process_gaps(gaps: list[Gap], threshold: timedelta, now: datetime, report) -> None:
    nodes = {n.pk: n for n in Node.objects.filter(pk__in={g.node_id for g in gaps})}
    for gap in sorted((g for g in gaps if not g.key), key=lambda g: g.start):
        node = nodes.get(gap.node_id)
        if node is not None:
            _node_gap(node, gap, now, report)

    session_gaps = [g for g in gaps if g.key and g.node_id in nodes]
    if not session_gaps:
        return
    members = member_ids_for_keys([g.key for g in session_gaps])
    outages = _outages(session_gaps, threshold)
    # One plan per disconnect key: a gap repeated inside the batch is a replay.
    planned: dict[tuple, tuple[Gap, int, Incident | None]] = {}
    for gap in session_gaps:
        member_id = members.get(gap.key)
        if member_id is None:
            continue
        outage = next(
            (
                inc
                for inc in outages.get(gap.node_id, [])
                if inc.started_at - threshold <= gap.start
                and (inc.ended_at is None or gap.start <= inc.ended_at)
            ),
            None,
        )
        key = (gap.node_id, member_id, split_key(gap.key)[1], gap.start)
        planned.setdefault(key, (gap, member_id, outage))
    if not planned:
        return

    existing = _disconnects(session_gaps, members.values())
    fresh = [key for key in planned if key not in existing]
    if fresh:
        Disconnect.objects.bulk_create(
            [
                Disconnect(
                    node_id=key[0],
                    member_id=key[1],
                    session_id=key[2],
                    started_at=key[3],
                    ended_at=planned[key][0].end,
                    status=DisconnectStatus.CLOSED,
                    detected_at=now,
                    incident=planned[key][2],
                )
                for key in fresh
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
    rows = _disconnects(session_gaps, members.values()) if fresh else existing

    to_close: list[Disconnect] = []
    to_pay: list[int] = []
    joined: dict[int, list[int]] = defaultdict(list)
    window: dict[int, Incident] = {}
    touched_mass: set[int] = set()
    for key, (gap, member_id, outage) in planned.items():
        disconnect = rows.get(key)
        if disconnect is None:
            continue
        if (
            key not in existing
            and disconnect.detected_at != now
            and disconnect.status != DisconnectStatus.OPEN
        ):
            continue  # inserted meanwhile by another pass: a replayed gap
        if disconnect.status == DisconnectStatus.OPEN or disconnect.ended_at is None:
            disconnect.status = DisconnectStatus.CLOSED
            disconnect.ended_at = gap.end
            if disconnect.incident_id is None and outage is not None:
                disconnect.incident = outage
            to_close.append(disconnect)
        report.disconnects_closed += 1
        incident = disconnect.incident
        if incident is not None and incident.kind in WINDOW_KINDS:
            joined[incident.pk].append(member_id)
            window[incident.pk] = incident
            continue
        if incident is not None and incident.kind == IncidentKind.MASS_DROP:
            touched_mass.add(incident.pk)
        to_pay.append(disconnect.pk)

    Disconnect.objects.bulk_update(to_close, ["status", "ended_at", "incident"], batch_size=1000)
    for incident_id, member_ids in joined.items():
        incident_add_members(incident=window[incident_id], member_ids=member_ids)
        if window[incident_id].status == IncidentStatus.CLOSED:
            # Joined after the payout began: the payout sweep pays them.
            Incident.objects.filter(pk=incident_id, payout_state=PayoutState.DONE).update(
                payout_state=PayoutState.RUNNING
            )
    enqueue_many_on_commit(
        "compensation.tasks.compensate_disconnects",
        [(to_pay[i : i + PAY_CHUNK],) for i in range(0, len(to_pay), PAY_CHUNK)],
    )

    for incident in Incident.objects.filter(pk__in=touched_mass, status=IncidentStatus.OPEN):
        if not incident.disconnects.filter(status=DisconnectStatus.OPEN).exists():
            last = (
                incident.disconnects.order_by("-ended_at")
                .values_list("ended_at", flat=True)
                .first()
            )
            incident_close(incident=incident, ended_at=last or now, now=now)
            report.incidents_closed += 1


def _node_gap(node: Node, gap: Gap, now: datetime, report) -> None:
    """The node itself sent nothing between ``gap.start`` and ``gap.end``:
    a real outage, even when we only learn of it from a replay."""
    open_outage = Incident.objects.filter(
        auto_node=node, status=IncidentStatus.OPEN, kind=IncidentKind.NODE_SILENT
    ).first()
    if open_outage is not None:
        incident_close(incident=open_outage, ended_at=gap.end, now=now)
        report.incidents_closed += 1
        return
    if Incident.objects.filter(
        auto_node=node, kind=IncidentKind.NODE_SILENT, started_at=gap.start
    ).exists():
        return  # the same gap, replayed
    incident = incident_open_detected(
        kind=IncidentKind.NODE_SILENT,
        node=node,
        started_at=gap.start,
        ended_at=gap.end,
        member_ids=[],
    )
    if incident is not None:
        incident_payout_start(incident=incident)
        report.incidents_opened += 1
        report.incidents_closed += 1
