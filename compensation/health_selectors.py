"""Reads of node health shared by the status page, the status API (wired by
the integrator), /metrics and admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .models import HealthState, Node, NodeHealth

# How a health state reads as a status-page component state (DESIGN §6:
# operational, degraded, outage, maintenance). Failing stays "degraded":
# an outage is declared by an incident (detected or by staff), not guessed.
COMPONENT_STATE = {
    HealthState.LEARNING: "operational",
    HealthState.HEALTHY: "operational",
    HealthState.DEGRADED: "degraded",
    HealthState.FAILING: "degraded",
}


@dataclass(frozen=True)
class NodeHealthInfo:
    node_id: int
    name: str
    state: str  # HealthState value
    component_state: str  # operational | degraded
    score: float
    since: datetime | None

    @property
    def is_degraded(self) -> bool:
        return self.component_state == "degraded"


def node_health_states() -> dict[int, NodeHealthInfo]:
    """Every node in service with its health (a node not yet observed is
    learning, i.e. operational). Two queries."""
    rows = {h.node_id: h for h in NodeHealth.objects.all()}
    result = {}
    for node in Node.objects.filter(revoked_at__isnull=True).order_by("name"):
        health = rows.get(node.pk)
        state = health.state if health else HealthState.LEARNING
        result[node.pk] = NodeHealthInfo(
            node_id=node.pk,
            name=node.name,
            state=state,
            component_state=COMPONENT_STATE.get(state, "operational"),
            score=health.score if health else 100.0,
            since=health.since if health else None,
        )
    return result


def node_health_metrics() -> dict:
    """Gauges for /metrics (registered in CompensationConfig.ready)."""
    states = node_health_states().values()
    return {
        "kamen_node_health_score": (
            "Health score of each node from the online health model (0 failing .. 100 healthy).",
            [({"node": s.name}, s.score) for s in states],
        ),
        "kamen_node_degraded": (
            "1 when the health model holds the node degraded or failing, else 0.",
            [({"node": s.name, "state": s.state}, 1 if s.is_degraded else 0) for s in states],
        ),
    }
