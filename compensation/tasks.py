"""Celery tasks: thin, id-based, safe to run twice. Each calls a service."""

from celery import shared_task
from django.utils import timezone

from .services.detection import detection_run
from .services.disconnects import disconnect_compensate
from .services.health import usage_sample_node
from .services.incident_updates import incident_update_notify
from .services.incidents import incident_notify, incident_pay_members, incident_payout_plan
from .services.ledger_publish import ledger_publish_head


@shared_task(ignore_result=True)
def detect_disconnects() -> None:
    detection_run(now=timezone.now())


@shared_task(ignore_result=True)
def compensate_disconnect(disconnect_id: int) -> None:
    disconnect_compensate(disconnect_id=disconnect_id, now=timezone.now())


@shared_task(ignore_result=True)
def compensate_disconnects(disconnect_ids: list[int]) -> None:
    """A detection pass's closed disconnects, a chunk per message (thousands
    in a regional outage). Each is its own transaction, idempotent: a chunk
    redelivered after a killed worker pays only what is still unpaid."""
    for disconnect_id in disconnect_ids:
        disconnect_compensate(disconnect_id=disconnect_id, now=timezone.now())


@shared_task(ignore_result=True)
def pay_incident(incident_id: int) -> None:
    """Split an incident's payout into chunks. Re-running it (after a crash,
    or from the sweeper) plans only what is still unpaid."""
    for chunk in incident_payout_plan(incident_id=incident_id):
        pay_incident_chunk.delay(incident_id, chunk)


@shared_task(ignore_result=True)
def pay_incident_chunk(incident_id: int, member_ids: list[int]) -> None:
    incident_pay_members(incident_id=incident_id, member_ids=member_ids, now=timezone.now())


@shared_task(ignore_result=True)
def publish_ledger_head() -> None:
    ledger_publish_head(now=timezone.now())


@shared_task(ignore_result=True)
def notify_incident(incident_id: int, event: str) -> None:
    incident_notify(incident_id=incident_id, event=event, now=timezone.now())


@shared_task(ignore_result=True)
def notify_status_update(update_id: int) -> None:
    incident_update_notify(update_id=update_id, now=timezone.now())


@shared_task(ignore_result=True)
def sample_usage(node_id: int) -> None:
    """Usage-profile sample of one node (claims its window: safe to run twice)."""
    usage_sample_node(node_id=node_id, now=timezone.now())
