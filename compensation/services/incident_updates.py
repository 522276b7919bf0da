"""Staff-posted incident updates (investigating → identified → monitoring →
resolved; scheduled → in progress → completed for maintenance), and the
status notices sent to members who subscribed to them."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from kamen_portal.queue import enqueue_on_commit
from members.models import NotificationKind, User
from members.services.notify import notify_subscribers

from .. import notices
from ..models import Incident, IncidentStatus, IncidentUpdate, UpdateStatus
from .incidents import incident_close

MAINTENANCE_STAGES = (UpdateStatus.SCHEDULED, UpdateStatus.IN_PROGRESS, UpdateStatus.COMPLETED)
INCIDENT_STAGES = (
    UpdateStatus.INVESTIGATING,
    UpdateStatus.IDENTIFIED,
    UpdateStatus.MONITORING,
    UpdateStatus.RESOLVED,
)
FINAL_STAGES = (UpdateStatus.RESOLVED, UpdateStatus.COMPLETED)


def update_stages(incident: Incident) -> tuple[str, ...]:
    return MAINTENANCE_STAGES if incident.is_maintenance else INCIDENT_STAGES


def update_would_close(*, incident: Incident, status: str) -> bool:
    """Posting a final stage on an open incident ends it (staff who may
    post but not end incidents are stopped before, in the admin)."""
    return status in FINAL_STAGES and incident.status == IncidentStatus.OPEN


def incident_update_check(*, incident: Incident, status: str, now: datetime) -> None:
    """Raise ValidationError (keyed by field) when the update cannot be posted."""
    if incident.status == IncidentStatus.CANCELLED:
        raise ValidationError(_("This incident was withdrawn; it takes no updates."))
    if status not in update_stages(incident):
        raise ValidationError(
            {
                "status": _("Choose a stage for maintenance: scheduled, in progress, completed.")
                if incident.is_maintenance
                else _(
                    "Choose a stage for an incident: investigating, identified, monitoring, resolved."
                )
            }
        )
    if not update_would_close(incident=incident, status=status):
        return
    if not incident.is_declared:
        raise ValidationError(
            {
                "status": _(
                    "A detected outage ends when the node reports again; post "
                    "“monitoring” until then."
                )
            }
        )
    if incident.started_at >= now:
        raise ValidationError(
            {"status": _("The maintenance has not started yet; it cannot be completed.")}
        )


def incident_update_post(
    *,
    incident: Incident,
    status: str,
    message_zh: str,
    message_en: str,
    actor: User | None,
    now: datetime,
) -> IncidentUpdate:
    """Post a public update. A final stage on an open declared incident ends
    it now (or at its declared end, if earlier), which starts its payout.
    Subscribers are told after commit."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        incident_update_check(incident=incident, status=status, now=now)
        update = IncidentUpdate(
            incident=incident,
            status=status,
            message_zh=message_zh.strip(),
            message_en=message_en.strip(),
            posted_at=now,
            posted_by=actor,
        )
        update.full_clean()
        update.save()
        if update_would_close(incident=incident, status=status):
            ended = min(incident.ended_at, now) if incident.ended_at else now
            incident_close(incident=incident, ended_at=ended, now=now)
        else:
            # "Last updated" of the incident moves with every update.
            incident.save(update_fields=["updated_at"])
        enqueue_on_commit("compensation.tasks.notify_status_update", update.pk)
    return update


def incident_update_notify(*, update_id: int, now: datetime) -> int:
    """Tell members subscribed to status notices (safe to run twice)."""
    update = IncidentUpdate.objects.select_related("incident").get(pk=update_id)
    return notify_subscribers(
        kind=NotificationKind.STATUS_NOTICE,
        key_prefix=f"status:{update.public_id}",
        render=notices.status_update_render(update),
        now=now,
    )
