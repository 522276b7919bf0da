"""Alerts from the operators' monitoring (Prometheus Alertmanager) open and
resolve node incidents through the incident services."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Q

from ..models import (
    AlertLink,
    Incident,
    IncidentKind,
    IncidentScope,
    IncidentStatus,
    Node,
)
from .incidents import incident_close, incident_declare

ALERT_TITLES = ("服务节点 %(node)s 故障（监控告警）", "Node %(node)s outage (monitoring alert)")


class AlertOutcome(models.TextChoices):
    OPENED = "opened"
    RESOLVED = "resolved"
    UNCHANGED = "unchanged"


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
    ``starts_at``, once per firing (fingerprint and start). A repeated
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
            incident = _declare_node_outage(node, started_at=starts_at, ended_at=None, now=now)
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
    over, so it is paid all the same."""
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
        incident = _declare_node_outage(node, started_at=starts_at, ended_at=ends_at, now=now)
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
