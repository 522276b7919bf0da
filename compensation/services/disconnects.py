from __future__ import annotations

from datetime import datetime

from django.db import transaction

from ..models import Claim, Disconnect, DisconnectStatus, IncidentKind, SourceKind
from .credit import compensation_credit


def disconnect_compensate(*, disconnect_id: int, now: datetime) -> Claim | None:
    """Credit a closed disconnect (once, whatever calls it how often).

    Disconnects inside a node outage or declared incident are paid by the
    incident's payout instead, over the incident window; those inside a
    detected mass drop are paid here, for their own gap, at the incident ratio.
    """
    with transaction.atomic():
        disconnect = (
            Disconnect.objects.select_related("incident")
            .select_for_update(of=("self",))
            .get(pk=disconnect_id)
        )
        if disconnect.status != DisconnectStatus.CLOSED:
            return None
        incident = disconnect.incident
        if incident is not None and incident.kind != IncidentKind.MASS_DROP:
            return None
        claim = compensation_credit(
            member_id=disconnect.member_id,
            intervals=[(disconnect.started_at, disconnect.ended_at)],
            source_kind=SourceKind.INCIDENT if incident else SourceKind.DISCONNECT,
            source_ref=str(disconnect.public_id),
            idempotency_key=f"disconnect:{disconnect.public_id}",
            ratio=incident.ratio if incident else None,
            now=now,
        )
        Disconnect.objects.filter(pk=disconnect.pk).update(
            outcome=claim.outcome,
            credited_minutes=claim.credited_minutes,
            withheld_minutes=claim.withheld_minutes,
            outcome_reason=claim.reason,
        )
        return claim
