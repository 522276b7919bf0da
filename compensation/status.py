"""Reads of the public status page, its Atom feed and ``GET /api/v1/status/``.

Every node is a component. Its state now comes from ``component_state``
alone; its 90-day bars and uptime from ``compensation.uptime`` (the
published rule is documented there). Public data only: titles, times,
node names and staff-written updates, never a member.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from . import uptime
from .entry_labels import entry_label
from .entry_labels import incident_label as _incident_label
from .health_selectors import NodeHealthInfo, node_health_states
from .intervals import Interval
from .models import (
    Incident,
    IncidentKind,
    IncidentScope,
    IncidentStatus,
    IncidentUpdate,
    Node,
)
from .selectors import incidents_by_ref

UPTIME_DAYS = 90
LEGEND = (uptime.OPERATIONAL, uptime.DEGRADED, uptime.OUTAGE, uptime.MAINTENANCE, uptime.NO_DATA)


class ComponentState:
    """The four states of DESIGN §6 (values are the API's)."""

    OPERATIONAL = uptime.OPERATIONAL
    DEGRADED = uptime.DEGRADED
    OUTAGE = uptime.OUTAGE
    MAINTENANCE = uptime.MAINTENANCE
    LABELS = {
        OPERATIONAL: _("Operational"),
        DEGRADED: _("Degraded performance"),
        OUTAGE: _("Outage"),
        MAINTENANCE: _("Under maintenance"),
        uptime.NO_DATA: _("No data"),
    }
    VALUES = (OPERATIONAL, DEGRADED, OUTAGE, MAINTENANCE)


# What an incident of each kind does to the nodes it covers.
KIND_EFFECT = {
    IncidentKind.NODE_SILENT: ComponentState.OUTAGE,
    IncidentKind.OUTAGE: ComponentState.OUTAGE,
    IncidentKind.MASS_DROP: ComponentState.DEGRADED,
    IncidentKind.DEGRADED: ComponentState.DEGRADED,
    IncidentKind.MAINTENANCE: ComponentState.MAINTENANCE,
}
# Overall banner: the worst component wins (maintenance is planned, so it
# ranks below any unplanned trouble).
OVERALL_RANK = (
    ComponentState.OPERATIONAL,
    ComponentState.MAINTENANCE,
    ComponentState.DEGRADED,
    ComponentState.OUTAGE,
)


def incident_label(incident: Incident | str) -> str:
    """维护 for maintenance, 故障 for everything else: the one label every
    page, notice and feed uses for an incident (template filter
    ``incident_label``)."""
    return _incident_label(incident if isinstance(incident, str) else incident.kind)


PHASE_LABELS = {
    "scheduled": _("Scheduled"),
    "in_progress": _("In progress"),
    "completed": _("Completed"),
    "ongoing": _("Ongoing"),
    "resolved": _("Resolved"),
    "withdrawn": _("Withdrawn (no outage)"),
}


def incident_phase(incident: Incident, now: datetime) -> str:
    """Where an incident stands, in the words of its kind: maintenance is
    scheduled, in progress or completed; an incident ongoing or resolved."""
    if incident.status == IncidentStatus.CANCELLED:
        return "withdrawn"
    if incident.is_maintenance:
        if incident.status == IncidentStatus.CLOSED:
            return "completed"
        return "scheduled" if incident.started_at > now else "in_progress"
    return "resolved" if incident.status == IncidentStatus.CLOSED else "ongoing"


def incident_kinds(refs: Iterable[str]) -> dict[str, str]:
    """``{public_id: kind}`` for the incidents ledger entries refer to (one
    query), so a credit for maintenance says 维护 like the status page."""
    return {ref: incident.kind for ref, incident in incidents_by_ref(refs).items()}


# What a ledger entry was for: one home for the names (entry_labels).
source_label = entry_label


def _covers(incident: Incident, node_id: int) -> bool:
    if incident.scope == IncidentScope.ALL:
        return True
    return any(n.pk == node_id for n in incident.nodes.all())


def _is_active(incident: Incident, now: datetime) -> bool:
    return (
        incident.status == IncidentStatus.OPEN
        and incident.started_at <= now
        and (incident.ended_at is None or incident.ended_at > now)
    )


def component_state(
    *,
    node: Node,
    incidents: Iterable[Incident],
    now: datetime,
    health: NodeHealthInfo | None = None,
) -> str:
    """A node's state now, from the incidents that cover it and are active.

    The one place component state is decided (page, API and feed all call
    it). Precedence: maintenance > outage > degraded > operational: a node
    silent during its announced maintenance is the maintenance, as in the
    uptime rule. The node health model (``health``) can mark a node
    degraded before any incident is open; it never makes one an outage."""
    effects = {
        KIND_EFFECT[i.kind]
        for i in incidents
        if i.kind in KIND_EFFECT and _is_active(i, now) and _covers(i, node.pk)
    }
    if health is not None and health.is_degraded:
        effects.add(ComponentState.DEGRADED)
    for state in (ComponentState.MAINTENANCE, ComponentState.OUTAGE, ComponentState.DEGRADED):
        if state in effects:
            return state
    return ComponentState.OPERATIONAL


def overall_state(states: Iterable[str]) -> str:
    return max(states, key=OVERALL_RANK.index, default=ComponentState.OPERATIONAL)


def status_incidents(*, since: datetime) -> list[Incident]:
    """Every public incident that touches ``[since, ∞)``, nodes and updates
    prefetched: three queries for the whole page."""
    return list(
        Incident.objects.exclude(status=IncidentStatus.CANCELLED)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
        .prefetch_related("nodes", Prefetch("updates", queryset=_ordered_updates()))
        .order_by("-started_at")
    )


def _ordered_updates() -> QuerySet[IncidentUpdate]:
    return IncidentUpdate.objects.order_by("posted_at", "pk")


def day_bounds(*, now: datetime, days: int = UPTIME_DAYS) -> list[Interval]:
    """The last ``days`` calendar days (today included) in the portal's time
    zone, oldest first, as aware ``[start, end)`` intervals."""
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    today = now.astimezone(tz).date()

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=tz)

    first = today - timedelta(days=days - 1)
    return [
        (midnight(first + timedelta(days=n)), midnight(first + timedelta(days=n + 1)))
        for n in range(days)
    ]


def _intervals(incidents: Iterable[Incident], node: Node, state: str, now: datetime):
    for i in incidents:
        if KIND_EFFECT.get(i.kind) == state and _covers(i, node.pk) and i.started_at < now:
            yield (i.started_at, min(i.ended_at or now, now))


@dataclass(frozen=True)
class Component:
    node: Node
    state: str
    days: list[uptime.Day]
    uptime: Decimal | None
    retired_at: datetime | None = None

    @property
    def state_label(self) -> str:
        return str(ComponentState.LABELS[self.state])

    @property
    def troubled_days(self) -> list[uptime.Day]:
        """Days with an outage, degradation or maintenance, newest first (the
        text alternative of the bars)."""
        quiet = (uptime.OPERATIONAL, uptime.NO_DATA)
        return [d for d in reversed(self.days) if d.state not in quiet]

    @property
    def operational_days(self) -> int:
        return sum(1 for d in self.days if d.state == uptime.OPERATIONAL)

    @property
    def no_data_days(self) -> int:
        return sum(1 for d in self.days if d.state == uptime.NO_DATA)


def node_component(
    *, node: Node, incidents: list[Incident], now: datetime, health: NodeHealthInfo | None = None
) -> Component:
    bounds = day_bounds(now=now)
    degraded = list(_intervals(incidents, node, ComponentState.DEGRADED, now))
    if health is not None and health.is_degraded and health.since and health.since < now:
        # The health model's current episode colours the bars like a degraded incident.
        degraded.append((health.since, now))
    timeline = uptime.node_timeline(
        outages=_intervals(incidents, node, ComponentState.OUTAGE, now),
        degraded=degraded,
        maintenance=_intervals(incidents, node, ComponentState.MAINTENANCE, now),
    )
    days = uptime.days_of(
        timeline,
        bounds=bounds,
        observed_from=node.created_at,
        now=now,
        observed_until=node.revoked_at,
    )
    return Component(
        node=node,
        state=component_state(node=node, incidents=incidents, now=now, health=health),
        days=days,
        uptime=uptime.window_uptime(days),
        retired_at=node.revoked_at,
    )


def public_nodes() -> QuerySet[Node]:
    """Components: every node not retired (a revoked token retires it)."""
    return Node.objects.filter(revoked_at__isnull=True).order_by("name")


def retired_nodes(*, since: datetime) -> QuerySet[Node]:
    """Retired nodes still on the page: those retired inside the window
    (their bars run up to the retirement) and any that a member's
    disconnect names, so every node a member reads about is a component."""
    return (
        Node.objects.filter(revoked_at__isnull=False)
        .filter(Q(revoked_at__gte=since) | Q(disconnects__isnull=False))
        .distinct()
        .order_by("name")
    )


@dataclass(frozen=True)
class StatusOverview:
    overall: str
    components: list[Component]
    active: list[Incident]  # unplanned, open
    maintenance_now: list[Incident]
    upcoming: list[Incident]
    updated_at: datetime
    # Retired nodes, listed apart: not in the overall state or the API.
    retired: list[Component] = field(default_factory=list)

    @property
    def overall_label(self) -> str:
        return str(OVERALL_LABELS[self.overall])


OVERALL_LABELS = {
    ComponentState.OPERATIONAL: _("All services are running normally."),
    ComponentState.DEGRADED: _("Some services are running with degraded performance."),
    ComponentState.OUTAGE: _("Some services are down."),
    ComponentState.MAINTENANCE: _("Scheduled maintenance is in progress."),
}


def status_overview(*, now: datetime) -> StatusOverview:
    """Everything above the history on /status/ and in the JSON summary."""
    since = day_bounds(now=now)[0][0]
    incidents = status_incidents(since=since)
    health = node_health_states()
    components = [
        node_component(node=n, incidents=incidents, now=now, health=health.get(n.pk))
        for n in public_nodes()
    ]
    open_ = [i for i in incidents if i.status == IncidentStatus.OPEN]
    states = [c.state for c in components]
    if not components:  # no nodes yet: platform-wide incidents still count
        states = [KIND_EFFECT[i.kind] for i in open_ if _is_active(i, now)]
    return StatusOverview(
        overall=overall_state(states),
        components=components,
        active=[i for i in open_ if not i.is_maintenance],
        maintenance_now=[i for i in open_ if i.is_maintenance and _is_active(i, now)],
        upcoming=sorted(
            (i for i in open_ if i.is_maintenance and i.started_at > now),
            key=lambda i: i.started_at,
        ),
        updated_at=now,
        retired=[
            node_component(node=n, incidents=incidents, now=now) for n in retired_nodes(since=since)
        ],
    )


def past_incidents() -> QuerySet[Incident]:
    """历史故障: resolved unplanned incidents, newest first (never maintenance)."""
    return _public().filter(status=IncidentStatus.CLOSED).exclude(kind=IncidentKind.MAINTENANCE)


def past_maintenance() -> QuerySet[Incident]:
    return _public().filter(status=IncidentStatus.CLOSED, kind=IncidentKind.MAINTENANCE)


def _public() -> QuerySet[Incident]:
    return (
        Incident.objects.exclude(status=IncidentStatus.CANCELLED)
        .prefetch_related("nodes", Prefetch("updates", queryset=_ordered_updates()))
        .order_by("-started_at")
    )


def public_incident(*, public_id) -> Incident | None:
    return _public().filter(public_id=public_id).first()


def latest_update(incident: Incident) -> IncidentUpdate | None:
    """The newest update (from the prefetched, oldest-first list)."""
    updates = list(incident.updates.all())
    return updates[-1] if updates else None


def feed_incidents(limit: int = 50) -> list[Incident]:
    return list(_public()[:limit])


def incident_changed_at(incident: Incident) -> datetime:
    """When the public record of an incident last changed (Atom <updated>)."""
    update = latest_update(incident)
    return max(incident.updated_at, update.posted_at) if update else incident.updated_at
