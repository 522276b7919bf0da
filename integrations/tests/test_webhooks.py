"""Delivery: back-off, the attempt log, giving up, disabling with a notice,
redelivery, the sweeper, and events that exist only if their cause commits."""

import random
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from compensation.models import SourceKind
from compensation.services.credit import compensation_credit
from compensation.services.reversals import ledger_reverse
from integrations.models import (
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
)
from integrations.services.webhooks import (
    deliveries_redeliver,
    deliveries_sweep,
    endpoint_create,
    endpoint_enable,
    retry_delay,
    webhook_deliver,
)
from integrations.targets import TargetRefused
from members.models import Notification, NotificationKind
from members.tests.factories import MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db


def _member(now):
    # Its opening entry is an event too (membership.purchased).
    return MemberFactory(membership__expires_at=now + timedelta(days=30)).member


# Endpoints here want every event but the members' opening balances, so each
# test sees only the credits it makes.
NOT_OPENINGS = [t for t in EventType.values if t != EventType.MEMBERSHIP_PURCHASED]


def _credit(member, now, key="k1", minutes=30):
    return compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(minutes=minutes), now)],
        source_kind=SourceKind.DISCONNECT,
        source_ref=key,
        idempotency_key=key,
        now=now,
    )


def test_back_off_doubles_with_jitter_up_to_the_maximum(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 3600
    rng = random.Random(7)
    for attempt, full in [(1, 30), (2, 60), (3, 120), (8, 3600), (30, 3600)]:
        delays = [retry_delay(attempt, rng=rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len({round(d, 3) for d in delays}) > 40  # jittered, not fixed


def test_registration_refuses_private_targets():
    with pytest.raises(TargetRefused):
        endpoint_create(
            url="https://10.0.0.5/hook",
            description="",
            event_types=[],
            actor=None,
            now=timezone.now(),
        )
    assert not WebhookEndpoint.objects.exists()


def test_every_ledger_entry_becomes_one_event_with_its_type(receiver):
    now = timezone.now()
    member = _member(now)
    claim = _credit(member, now)
    _credit(member, now)  # the same key again: no new entry, no new event
    ledger_reverse(entry=claim.entry, note="mistake", now=now)
    types = list(Event.objects.order_by("id").values_list("type", flat=True))
    assert types == [
        EventType.MEMBERSHIP_PURCHASED,  # the opening balance
        EventType.MEMBERSHIP_CREDITED,
        EventType.MEMBERSHIP_DEBITED,
    ]


def test_a_rolled_back_credit_leaves_no_event_and_no_delivery(receiver):
    now = timezone.now()
    endpoint_create(url=receiver.url, description="", event_types=NOT_OPENINGS, actor=None, now=now)
    member = _member(now)
    with pytest.raises(RuntimeError), transaction.atomic():
        _credit(member, now)
        assert Event.objects.filter(type=EventType.MEMBERSHIP_CREDITED).count() == 1
        raise RuntimeError("boom")
    assert not Event.objects.filter(type=EventType.MEMBERSHIP_CREDITED).exists()
    assert not WebhookDelivery.objects.exists()
    assert receiver.received == []


def test_only_wanted_types_are_queued(receiver, django_capture_on_commit_callbacks):
    now = timezone.now()
    endpoint_create(
        url=receiver.url, description="", event_types=["appeal.decided"], actor=None, now=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        _credit(_member(now), now)
    assert Event.objects.filter(type=EventType.MEMBERSHIP_CREDITED).count() == 1
    assert not WebhookDelivery.objects.exists()


def _failing_delivery(receiver, django_capture_on_commit_callbacks, now):
    receiver.mode = "fail"
    endpoint, receiver.secret = endpoint_create(
        url=receiver.url, description="", event_types=NOT_OPENINGS, actor=None, now=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        _credit(_member(now), now)
    return endpoint, WebhookDelivery.objects.get()


def test_a_delivery_gives_up_after_the_maximum_and_logs_each_attempt(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    now = timezone.now()
    _endpoint, delivery = _failing_delivery(receiver, django_capture_on_commit_callbacks, now)
    assert delivery.attempts == 1 and delivery.status == DeliveryStatus.PENDING
    later = now
    for _ in range(4):
        later += timedelta(hours=7)
        webhook_deliver(delivery_id=delivery.pk, now=later)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
    log = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code, a.succeeded) for a in log] == [
        (1, 503, False),
        (2, 503, False),
        (3, 503, False),
    ]
    assert log[0].response_excerpt == "down for maintenance"

    # Redelivery (an operator's action) sends it once more.
    receiver.mode = "ok"
    deliveries_redeliver(delivery_ids=[delivery.pk], now=later)
    webhook_deliver(delivery_id=delivery.pk, now=later)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 1 and receiver.received[0].verified


def test_a_persistently_failing_endpoint_is_disabled_and_operators_are_told(
    receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 3600
    operator = StaffFactory(email="ops@example.com")
    operator.groups.create(name="Operators")
    now = timezone.now()
    endpoint, delivery = _failing_delivery(receiver, django_capture_on_commit_callbacks, now)
    webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(minutes=30))
    webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(minutes=59))
    endpoint.refresh_from_db()
    assert endpoint.enabled  # three failures, but not yet for an hour
    webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(hours=2))
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.consecutive_failures == 4
    notice = Notification.objects.get(user=operator, kind=NotificationKind.WEBHOOK_DISABLED)
    assert receiver.url in notice.title

    # Nothing is sent while disabled; the delivery waits (not lost).
    receiver.mode = "ok"
    assert webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(days=1)) is None
    assert deliveries_sweep(now=now + timedelta(days=1)) == 0
    # Enabled again, the sweeper resumes it.
    assert endpoint_enable(endpoint=endpoint, now=now + timedelta(days=1)) == 1
    with (
        time_machine.travel(now + timedelta(days=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        deliveries_sweep(now=now + timedelta(days=1))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 1


def test_the_sweeper_frees_a_delivery_whose_worker_died_mid_send(
    receiver, django_capture_on_commit_callbacks
):
    now = timezone.now()
    _endpoint, receiver.secret = endpoint_create(
        url=receiver.url, description="", event_types=NOT_OPENINGS, actor=None, now=now
    )
    _credit(_member(now), now)  # on-commit enqueue "lost": not executed
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENDING, claimed_at=now, attempts=1
    )
    assert deliveries_sweep(now=now + timedelta(seconds=30)) == 0  # may still be sending
    with (
        time_machine.travel(now + timedelta(minutes=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert deliveries_sweep(now=now + timedelta(minutes=5)) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 1


def test_a_target_that_turned_private_is_refused_at_delivery(
    receiver, settings, django_capture_on_commit_callbacks
):
    now = timezone.now()
    endpoint_create(url=receiver.url, description="", event_types=NOT_OPENINGS, actor=None, now=now)
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []  # as if DNS now pointed inside
    with django_capture_on_commit_callbacks(execute=True):
        _credit(_member(now), now)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("refused target")
    assert receiver.received == []
