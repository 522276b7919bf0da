"""Alerts from the operators' monitoring (Prometheus Alertmanager) open and
resolve node incidents through the incident services.

An alert fires only after its rule's ``for`` period (and a scrape or two), so
its ``startsAt`` is minutes after the node stopped serving. The outage it
opens starts at the node's last accepted heartbeat instead (the store's
watermark), when that lies between ``startsAt - ALERT_OUTAGE_LOOKBACK_MINUTES``
and ``startsAt``: the minutes before the alert fired are paid too. A last
beat older than the look-back starts the outage at the look-back's edge; no
beat at all, or one after ``startsAt``, leaves ``startsAt``. Detection's own
node incident over the same silence is paid once with it (the credit service
pays the union of a member's lost intervals)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from ..models import (
    AlertLink,
    Incident,
    IncidentKind,
    IncidentScope,
    IncidentStatus,
    Node,
)
from ..store import get_store
from .incidents import incident_close, incident_declare
from .ingest import MAX_CLOCK_SKEW, MAX_REPLAY_AGE

# The label that names the node an alert is about.
NODE_LABEL = "kamen_node"

ALERT_TITLES = ("服务节点 %(node)s 故障（监控告警）", "Node %(node)s outage (monitoring alert)")


class AlertOutcome(models.TextChoices):
    OPENED = "opened"
    RESOLVED = "resolved"
    UNCHANGED = "unchanged"


def alert_outage_start(*, node: Node, starts_at: datetime) -> datetime:
    """When the node an alert is about stopped serving: its last accepted
    heartbeat (event time), bounded by the alert's ``startsAt`` and the
    look-back before it (``ALERT_OUTAGE_LOOKBACK_MINUTES``). A node that
    never sent a beat, or beat after ``startsAt``, gives ``startsAt``."""
    clock = get_store().clocks().get(node.pk)
    watermark = clock.watermark if clock is not None else None
    if watermark is None or watermark >= starts_at:
        return starts_at
    look_back = timedelta(minutes=settings.ALERT_OUTAGE_LOOKBACK_MINUTES)
    return max(watermark, starts_at - look_back)


def _declare_node_outage(
    node: Node, *, started_at: datetime, ended_at: datetime | None, now: datetime
) -> Incident:
    """The outage an alert stands for: declared on its node, by nobody."""
    zh, en = ALERT_TITLES
    return incident_declare(
        kind=IncidentKind.OUTAGE,
        scope=IncidentScope.NODES,
        node_ids=[node.pk],
        started_at=started_at,
        ended_at=ended_at,
        ratio=None,
        title_zh=zh % {"node": node.name},
        title_en=en % {"node": node.name},
        actor=None,
        now=now,
    )


def incident_alert_firing(
    *, fingerprint: str, starts_at: datetime, alertname: str, node: Node, now: datetime
) -> tuple[Incident, str]:
    """An alert about ``node`` fires: open a declared outage of that node from
    when it stopped serving (``alert_outage_start``: its last heartbeat, at
    most the look-back before ``starts_at``), once per firing (fingerprint
    and start). A repeated
    notification, or the same alert re-firing while its incident is still
    open (a restarted Prometheus gives it a new start), changes nothing."""
    with transaction.atomic():
        # One writer per node at a time: two deliveries of the same alert
        # cannot both open an incident.
        Node.objects.select_for_update().filter(pk=node.pk).first()
        link = AlertLink.objects.filter(fingerprint=fingerprint, starts_at=starts_at).first()
        if link is not None:
            return link.incident, AlertOutcome.UNCHANGED
        open_link = (
            AlertLink.objects.filter(fingerprint=fingerprint, incident__status=IncidentStatus.OPEN)
            .select_related("incident")
            .first()
        )
        if open_link is not None:
            incident, outcome = open_link.incident, AlertOutcome.UNCHANGED
        else:
            incident = _declare_node_outage(
                node,
                started_at=alert_outage_start(node=node, starts_at=starts_at),
                ended_at=None,
                now=now,
            )
            outcome = AlertOutcome.OPENED
        AlertLink.objects.create(
            fingerprint=fingerprint,
            starts_at=starts_at,
            alertname=alertname[:200],
            node=node,
            incident=incident,
            received_at=now,
        )
        return incident, outcome


def incident_alert_resolved(
    *,
    fingerprint: str,
    starts_at: datetime,
    ends_at: datetime,
    alertname: str,
    node: Node,
    now: datetime,
) -> tuple[Incident, str]:
    """An alert about ``node`` resolved: close the incident it opened at
    ``ends_at`` (which starts the payout). Resolving again changes nothing. A
    resolution whose firing never arrived records the outage as already
    over, so it is paid all the same (from ``alert_outage_start``: by now
    the node is usually beating again, which leaves ``starts_at``)."""
    with transaction.atomic():
        Node.objects.select_for_update().filter(pk=node.pk).first()
        links = list(
            AlertLink.objects.filter(fingerprint=fingerprint)
            .filter(Q(incident__status=IncidentStatus.OPEN) | Q(starts_at=starts_at))
            .select_related("incident")
        )
        open_links = [link for link in links if link.incident.status == IncidentStatus.OPEN]
        if open_links:
            for incident in {link.incident_id: link.incident for link in open_links}.values():
                incident_close(
                    incident=incident,
                    # The check constraint: an incident ends after it starts.
                    ended_at=max(ends_at, incident.started_at + timedelta(seconds=1)),
                    now=now,
                )
            AlertLink.objects.filter(pk__in=[link.pk for link in open_links]).update(
                resolved_at=now
            )
            return open_links[0].incident, AlertOutcome.RESOLVED
        if links:
            return links[0].incident, AlertOutcome.UNCHANGED
        incident = _declare_node_outage(
            node,
            started_at=alert_outage_start(node=node, starts_at=starts_at),
            ended_at=ends_at,
            now=now,
        )
        AlertLink.objects.create(
            fingerprint=fingerprint,
            starts_at=starts_at,
            alertname=alertname[:200],
            node=node,
            incident=incident,
            received_at=now,
            resolved_at=now,
        )
        return incident, AlertOutcome.RESOLVED


class AlertIgnored(Exception):
    """An alert this receiver cannot act on; the others in the batch go on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def alert_receive(
    *,
    status: str,
    fingerprint: str,
    labels: dict,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime,
) -> str:
    """One Alertmanager alert: find the node it names, check its times lie in
    the window the heartbeat ingest accepts, then open (firing) or close
    (resolved) that node's outage. Returns the AlertOutcome; raises
    AlertIgnored for an alert that names no active node or has impossible
    times."""
    node_name = labels.get(NODE_LABEL, "").strip()
    if not node_name:
        raise AlertIgnored(
            "no_node_label",
            _("The alert has no %(label)s label naming a node.") % {"label": NODE_LABEL},
        )
    node = Node.objects.filter(name=node_name, revoked_at__isnull=True).first()
    if node is None:
        raise AlertIgnored(
            "unknown_node", _("No active node is named %(node)s.") % {"node": node_name}
        )
    if not now - MAX_REPLAY_AGE <= starts_at <= now + MAX_CLOCK_SKEW:
        raise AlertIgnored(
            "starts_out_of_range",
            _("The alert must have started within the last 7 days, and not in the future."),
        )
    alertname = labels.get("alertname", "")
    if status == "firing":
        _incident, outcome = incident_alert_firing(
            fingerprint=fingerprint, starts_at=starts_at, alertname=alertname, node=node, now=now
        )
        return outcome
    # A resolved alert's end is when it resolved; never later than now.
    ends_at = min(ends_at, now) if ends_at is not None else now
    if ends_at <= starts_at:
        raise AlertIgnored("ends_before_start", _("The alert resolves before it starts."))
    _incident, outcome = incident_alert_resolved(
        fingerprint=fingerprint,
        starts_at=starts_at,
        ends_at=ends_at,
        alertname=alertname,
        node=node,
        now=now,
    )
    return outcome
