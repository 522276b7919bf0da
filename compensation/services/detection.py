"""One detection pass: turn the heartbeat store's state into disconnects and
incidents. Safe to run concurrently and repeatedly: every write is keyed
(Disconnect ``disconnect_once``, one open detected incident per node), and
gaps are acknowledged only after the transaction that recorded them."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from kamen_portal import metrics
from kamen_portal.queue import enqueue_on_commit
from members.models import MemberProfile
from members.services.notify import notify_many

from .. import notices
from ..models import (
    DECLARED_KINDS,
    Disconnect,
    DisconnectStatus,
    Incident,
    IncidentKind,
    IncidentStatus,
    Node,
    Outcome,
    PayoutState,
)
from ..store import NodeClock, get_store, split_key
from .gaps import drain_gaps
from .health import network_health_observe
from .incidents import (
    WINDOW_KINDS,
    incident_add_members,
    incident_cancel,
    incident_close,
    incident_open_detected,
    member_ids_for_keys,
)
from .policy import policy_current

logger = logging.getLogger(__name__)

# A mass drop: at least this many sessions of a node, and at least this share
# of its live sessions, falling silent within the same minute.
MASS_DROP_MIN_SESSIONS = 10
MASS_DROP_SHARE = 0.5
# Work that should have been enqueued but has not progressed for this long is
# enqueued again (broker outage at commit time, lost message, killed worker).
SWEEP_AFTER = timedelta(minutes=2)


@dataclass
class DetectionReport:
    gaps: int = 0
    disconnects_opened: int = 0
    disconnects_closed: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    incidents_cancelled: int = 0
    unresolved: int = 0
    requeued: int = 0


def detection_run(*, now: datetime) -> DetectionReport:
    started = time.perf_counter()
    report = _detection_pass(now=now)
    # Operators' view of the pass (Prometheus): cost, and that passes run.
    with contextlib.suppress(Exception):
        metrics.set_gauge("kamen_detection_pass_seconds", round(time.perf_counter() - started, 4))
        metrics.incr("kamen_detection_passes_total")
    return report


def _detection_pass(*, now: datetime) -> DetectionReport:
    policy = policy_current()
    threshold = timedelta(minutes=policy.threshold_minutes)
    store = get_store()
    report = DetectionReport()
    drain_gaps(store, threshold, now, report)
    clocks = store.clocks()
    nodes = {n.pk: n for n in Node.objects.filter(pk__in=list(clocks))}
    for node_id, clock in clocks.items():
        node = nodes.get(node_id)
        if node is not None and clock.watermark is not None:
            _flag_silent(store, node, clock, threshold, now, report)
    _node_silence(store, nodes, clocks, threshold, now, report)
    _resolve_stale(store, clocks, policy.cap_per_event_minutes, now, report)
    _close_due_declared(now, report)
    _sweep(now, report)
    network_health_observe(store=store, clocks=clocks, threshold=threshold, now=now)
    return report


# --- members who fell silent -------------------------------------------------


def _flag_silent(store, node: Node, clock: NodeClock, threshold: timedelta, now, report) -> None:
    flagged = store.flag_silent(node.pk, before=clock.watermark - threshold)
    if not flagged:
        return
    members = member_ids_for_keys([k for k, _ in flagged])
    outages = list(
        Incident.objects.filter(
            auto_node=node,
            kind=IncidentKind.NODE_SILENT,
            status__in=[IncidentStatus.OPEN, IncidentStatus.CLOSED],
            started_at__gte=min(t for _, t in flagged) - threshold,
        )
    )
    lost_in_outage: dict[int, list[int]] = defaultdict(list)
    forget: list[str] = []
    fresh: list[tuple[str, datetime, int]] = []
    for key, last_seen in flagged:
        member_id = members.get(key)
        if member_id is None:
            continue
        outage = next(
            (
                o
                for o in outages
                if abs((last_seen - o.started_at).total_seconds()) <= threshold.total_seconds()
            ),
            None,
        )
        if outage is not None:
            # Went down with the node and never came back: the outage's
            # payout covers them; their session is not a disconnect of its own.
            lost_in_outage[outage.pk].append(member_id)
            forget.append(key)
        else:
            fresh.append((key, last_seen, member_id))
    with transaction.atomic():
        for outage_id, member_ids in lost_in_outage.items():
            incident_add_members(incident=Incident(pk=outage_id), member_ids=member_ids)
        store.forget(node.pk, forget)
        mass = _mass_drop(store, node, fresh)
        rows = [
            Disconnect(
                node=node,
                member_id=member_id,
                session_id=split_key(key)[1],
                started_at=last_seen,
                status=DisconnectStatus.OPEN,
                detected_at=now,
                incident=mass.get(key),
            )
            for key, last_seen, member_id in fresh
        ]
        Disconnect.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        report.disconnects_opened += len(rows)
        # Members inside a mass drop hear about the incident, not N guesses.
        individual = [d for d in rows if d.incident is None]
        if individual:
            zones = dict(
                MemberProfile.objects.filter(pk__in={d.member_id for d in individual}).values_list(
                    "pk", "timezone"
                )
            )
            notify_many(
                messages=[
                    notices.disconnect_detected(d, node_name=node.name, tz=zones.get(d.member_id))
                    for d in individual
                ],
                now=now,
            )


def _mass_drop(store, node: Node, fresh: list[tuple[str, datetime, int]]) -> dict[str, Incident]:
    """Most of a node's live sessions dropping in the same minute is one
    incident, not hundreds of separate disconnects."""
    by_minute: dict[datetime, list[tuple[str, datetime, int]]] = defaultdict(list)
    for item in fresh:
        by_minute[item[1].replace(second=0, microsecond=0)].append(item)
    still_live = store.live_count(node.pk)
    result: dict[str, Incident] = {}
    for _minute, group in sorted(by_minute.items()):
        if len(group) < MASS_DROP_MIN_SESSIONS or len(group) < MASS_DROP_SHARE * (
            still_live + len(fresh)
        ):
            continue
        incident = Incident.objects.filter(auto_node=node, status=IncidentStatus.OPEN).first()
        if incident is None:
            incident = incident_open_detected(
                kind=IncidentKind.MASS_DROP,
                node=node,
                started_at=min(t for _, t, _ in group),
                member_ids=[m for _, _, m in group],
            )
        else:
            incident_add_members(incident=incident, member_ids=[m for _, _, m in group])
        if incident is not None:
            for key, _t, _m in group:
                result[key] = incident
    return result


# --- nodes that fell silent --------------------------------------------------


def _node_silence(
    store, nodes: dict[int, Node], clocks: dict[int, NodeClock], threshold, now, report
) -> None:
    fresh = {
        nid
        for nid, c in clocks.items()
        if c.last_arrival is not None and c.last_arrival >= now - threshold
    }
    # If no node at all got through, the portal is the one that was cut off:
    # open nothing; the nodes' replays will tell what really happened.
    portal_receiving = bool(fresh)
    open_detected = {
        i.auto_node_id: i
        for i in Incident.objects.filter(status=IncidentStatus.OPEN, auto_node__isnull=False)
    }
    for node_id, clock in clocks.items():
        node = nodes.get(node_id)
        if node is None or clock.watermark is None:
            continue
        incident = open_detected.get(node_id)
        if incident is None:
            if portal_receiving and node_id not in fresh and not node.is_revoked:
                keys = store.seen_between(node_id, clock.watermark - threshold, clock.watermark)
                opened = incident_open_detected(
                    kind=IncidentKind.NODE_SILENT,
                    node=node,
                    started_at=clock.watermark,
                    member_ids=list(member_ids_for_keys(keys).values()),
                )
                if opened is not None:
                    report.incidents_opened += 1
        elif (
            incident.kind == IncidentKind.NODE_SILENT
            and node_id in fresh
            and clock.watermark > incident.started_at + threshold
        ):
            # The node is back and its events moved on. A real outage would
            # have left a node gap: drain first so we cannot miss it.
            drain_gaps(store, threshold, now, report)
            incident.refresh_from_db()
            if incident.status == IncidentStatus.OPEN:
                incident_cancel(incident=incident)
                report.incidents_cancelled += 1


# --- housekeeping --------------------------------------------------------------


def _resolve_stale(store, clocks, cap_minutes: int, now, report) -> None:
    """A member silent for longer than the per-event cap while their node ran
    on has left, not dropped: close as unresolved (appealable), not paid."""
    for node_id, clock in clocks.items():
        if clock.watermark is None:
            continue
        stale = list(
            Disconnect.objects.filter(
                node_id=node_id,
                status=DisconnectStatus.OPEN,
                started_at__lt=clock.watermark - timedelta(minutes=cap_minutes),
            ).select_related("member")[:5000]
        )
        if not stale:
            continue
        Disconnect.objects.filter(pk__in=[d.pk for d in stale]).update(
            status=DisconnectStatus.UNRESOLVED,
            outcome=Outcome.NOT_ELIGIBLE,
            outcome_reason="never_resumed",
        )
        store.forget(node_id, [f"{d.member.member_no}|{d.session_id}" for d in stale])
        report.unresolved += len(stale)


def _close_due_declared(now: datetime, report: DetectionReport) -> None:
    for incident in Incident.objects.filter(
        status=IncidentStatus.OPEN,
        kind__in=DECLARED_KINDS,
        ended_at__isnull=False,
        ended_at__lte=now,
    ):
        incident_close(incident=incident, ended_at=incident.ended_at, now=now)
        report.incidents_closed += 1


def _sweep(now: datetime, report: DetectionReport) -> None:
    pending = Disconnect.objects.filter(
        status=DisconnectStatus.CLOSED, outcome=Outcome.PENDING, detected_at__lt=now - SWEEP_AFTER
    ).exclude(incident__kind__in=WINDOW_KINDS)
    for disconnect_id in pending.values_list("pk", flat=True)[:1000]:
        enqueue_on_commit("compensation.tasks.compensate_disconnect", disconnect_id)
        report.requeued += 1
    for incident_id in Incident.objects.filter(
        status=IncidentStatus.CLOSED,
        kind__in=WINDOW_KINDS,
        payout_state__in=[PayoutState.RUNNING, PayoutState.NOT_STARTED],
        updated_at__lt=now - SWEEP_AFTER,
    ).values_list("pk", flat=True)[:100]:
        Incident.objects.filter(pk=incident_id).update(
            payout_state=PayoutState.RUNNING, updated_at=now
        )
        enqueue_on_commit("compensation.tasks.pay_incident", incident_id)
        report.requeued += 1
