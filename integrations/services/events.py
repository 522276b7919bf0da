"""The outbox: recording events in their cause's transaction and queueing
their webhook deliveries.

Invariants:
- an event exists if and only if its cause committed (same transaction);
- a cause (``cause`` key) is recorded once, whatever repeats;
- event ids are allocated under the event head lock, so they commit in id
  order and the feed's cursor never passes an event that commits later;
- each enabled endpoint that wants the type gets exactly one delivery row per
  event, created with the event; sending happens after commit (Celery), and
  the sweeper re-sends what a lost enqueue or a dead worker left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from kamen_portal.bulk import copy_insert, pg_text_array
from kamen_portal.queue import enqueue_on_commit

from ..models import Event, EventHead, WebhookDelivery, WebhookEndpoint

DELIVERY_CHUNK = 50


@dataclass(frozen=True)
class NewEvent:
    type: str
    cause: str
    data: dict
    member_no: str = ""


def events_record(*, events: list[NewEvent], now: datetime) -> list[Event]:
    """Record ``events`` (in order) in the caller's transaction and queue
    their deliveries. Returns the events newly recorded."""
    if not events:
        return []
    with transaction.atomic():
        # Lock order: anything the caller holds (members, the ledger head),
        # then the event head, held until commit.
        EventHead.objects.bulk_create([EventHead(pk=1)], ignore_conflicts=True)
        EventHead.objects.select_for_update().get(pk=1)
        causes = [e.cause for e in events]
        seen = _recorded_causes(causes)
        rows = []
        for new in events:
            if new.cause in seen:
                continue
            seen.add(new.cause)
            rows.append(
                Event(
                    type=new.type,
                    cause=new.cause,
                    member_no=new.member_no,
                    data=new.data,
                    created_at=now,
                )
            )
        # By COPY on PostgreSQL (a payout chunk records an event per entry);
        # ids still come from the sequence in order, under the head lock.
        copy_insert(rows)
        deliveries_queue(events=rows, now=now)
        return rows


def _recorded_causes(causes: list[str]) -> set[str]:
    if connection.vendor != "postgresql":
        return set(Event.objects.filter(cause__in=causes).values_list("cause", flat=True))
    # One array parameter, not one quoted literal per cause (kamen_portal.bulk).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT cause FROM {Event._meta.db_table} WHERE cause = ANY(%s::text[])",  # noqa: S608
            [pg_text_array(causes)],
        )
        return {cause for (cause,) in cursor.fetchall()}


def deliveries_queue(*, events: list[Event], now: datetime) -> list[int]:
    """One delivery per (enabled endpoint wanting the type, event), sent
    after commit in chunks."""
    endpoints = list(WebhookEndpoint.objects.filter(enabled=True).only("pk", "event_types"))
    if not endpoints or not events:
        return []
    deliveries = [
        WebhookDelivery(endpoint_id=ep.pk, event_id=ev.pk, next_attempt_at=now, created_at=now)
        for ev in events
        for ep in endpoints
        if ep.wants(ev.type)
    ]
    WebhookDelivery.objects.bulk_create(deliveries, batch_size=2000)
    ids = [d.pk for d in deliveries]
    for start in range(0, len(ids), DELIVERY_CHUNK):
        enqueue_on_commit(
            "integrations.tasks.deliver_webhooks", ids[start : start + DELIVERY_CHUNK]
        )
    return ids
