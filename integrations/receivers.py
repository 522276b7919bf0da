"""Listening to the layers below: their writes become events (in their
transaction) and invalidate cached entitlements (after their commit)."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from appeals.models import AppealEvent
from appeals.models import EventKind as AppealEventKind
from compensation.models import Incident, IncidentStatus, LedgerEntry, LedgerLogCheckpoint
from compensation.signals import ledger_entries_appended
from members.models import MemberProfile

from .entitlements import entitlements_forget
from .events import (
    appeal_event_data,
    checkpoint_event_data,
    incident_event_data,
    ledger_event_data,
    ledger_event_type,
)
from .models import Event, EventType
from .services.events import NewEvent, events_record

DECISIONS = {
    AppealEventKind.APPROVED: "approved",
    AppealEventKind.PARTLY_APPROVED: "partly_approved",
    AppealEventKind.REJECTED: "rejected",
    AppealEventKind.ALREADY_COMPENSATED: "already_compensated",
}


_tables_ready = False


def _outbox_ready() -> bool:
    """False while migrating a database whose integrations tables do not
    exist yet (a data migration of a lower app that appends ledger entries
    runs before them): those entries predate the outbox."""
    global _tables_ready  # noqa: PLW0603 - a per-process memo of a fact that only becomes true
    if not _tables_ready:
        _tables_ready = Event._meta.db_table in connection.introspection.table_names()
    return _tables_ready


@receiver(ledger_entries_appended, sender=LedgerEntry, dispatch_uid="integrations_ledger_events")
def ledger_events(sender, entries, member_nos, **kwargs) -> None:
    if not _outbox_ready():
        return
    events_record(
        events=[
            NewEvent(
                type=ledger_event_type(kind=entry.kind, minutes=entry.minutes),
                cause=f"ledger:{entry.public_id}",
                member_no=member_nos[entry.member_id],
                data=ledger_event_data(entry, member_no=member_nos[entry.member_id]),
            )
            for entry in entries
        ],
        now=timezone.now(),
    )
    numbers = {member_nos[e.member_id] for e in entries}
    transaction.on_commit(lambda: entitlements_forget(numbers))


@receiver(post_save, sender=LedgerLogCheckpoint, dispatch_uid="integrations_checkpoint_published")
def checkpoint_published(sender, instance: LedgerLogCheckpoint, created: bool, raw=False, **kwargs):
    # Saved inside the publisher's transaction: the event commits with the
    # checkpoint, and a size signed twice is one cause, so one event.
    if not created or raw or not _outbox_ready():
        return
    events_record(
        events=[
            NewEvent(
                type=EventType.LEDGER_CHECKPOINT,
                cause=f"checkpoint:{instance.size}",
                data=checkpoint_event_data(instance),
            )
        ],
        now=timezone.now(),
    )


@receiver(post_save, sender=MemberProfile, dispatch_uid="integrations_member_saved")
def member_saved(sender, instance: MemberProfile, raw=False, **kwargs) -> None:
    # Status changes (suspension, closing) and any saved expiry.
    number = instance.member_no
    transaction.on_commit(lambda: entitlements_forget([number]))


@receiver(post_save, sender=AppealEvent, dispatch_uid="integrations_appeal_decided")
def appeal_decided(sender, instance: AppealEvent, created: bool, raw=False, **kwargs) -> None:
    outcome = DECISIONS.get(instance.kind)
    if not created or raw or outcome is None or not _outbox_ready():
        return
    appeal = instance.appeal
    member_no = MemberProfile.objects.values_list("member_no", flat=True).get(pk=appeal.member_id)
    events_record(
        events=[
            NewEvent(
                type=EventType.APPEAL_DECIDED,
                cause=f"appeal:{appeal.public_id}:{instance.pk}",
                member_no=member_no,
                data=appeal_event_data(appeal, member_no=member_no, outcome=outcome),
            )
        ],
        now=timezone.now(),
    )


@receiver(post_save, sender=Incident, dispatch_uid="integrations_incident_events")
def incident_events(sender, instance: Incident, raw=False, **kwargs) -> None:
    """Incidents are saved by several services (detected, declared, edited,
    closed): each state is recorded once, whichever save reaches it."""
    if raw or instance.status not in (IncidentStatus.OPEN, IncidentStatus.CLOSED):
        return
    if not _outbox_ready():
        return
    ref = instance.public_id
    events = [NewEvent(EventType.INCIDENT_OPENED, f"incident:{ref}:opened", {})]
    if instance.status == IncidentStatus.CLOSED:
        events.append(NewEvent(EventType.INCIDENT_RESOLVED, f"incident:{ref}:resolved", {}))
    data = incident_event_data(instance)
    events_record(
        events=[NewEvent(e.type, e.cause, data) for e in events],
        now=timezone.now(),
    )
