"""One word for an incident, the same on every page: 故障 (outage) or 维护
(maintenance). Kept minimal here; the status page work owns the fuller
label helper and may absorb this one."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .models import Incident, IncidentKind

OUTAGE = _("Outage")
MAINTENANCE = _("Maintenance")


def incident_word(incident: Incident | None) -> str:
    """Declared maintenance is "maintenance"; everything else (detected node
    outages, mass drops, declared outages) is an "outage"."""
    if incident is not None and incident.kind == IncidentKind.MAINTENANCE:
        return MAINTENANCE
    return OUTAGE
