"""Issue 12's done-when for integrations: a detected disconnect is credited,
a real HTTP receiver gets exactly one signed membership.credited per entry,
the entitlement API shows the new end, a receiver that is down for a while
loses nothing and gets nothing twice, and the pull feed shows the same
events in order."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from compensation.models import LedgerEntry, LedgerKind
from compensation.tests.conftest import T0
from integrations.models import DeliveryAttempt, DeliveryStatus, WebhookDelivery
from integrations.services.tokens import integration_token_create
from integrations.services.webhooks import endpoint_create
from integrations.tasks import sweep_webhook_deliveries

from .conftest import report

pytestmark = pytest.mark.django_db


def _gap_beats(world, member, *, before, after):
    return world.beats(member, before) + world.beats(member, after)


def _entitlement(node_api, member):
    response = node_api.get(f"/api/v1/entitlements/{member.member_no}/")
    assert response.status_code == 200, response.content
    return response.json()


def _iso(value):
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_credit_reaches_receiver_once_signed_survives_an_outage_and_matches_the_feed(
    world, receiver, node_api, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_create(
        url=receiver.url,
        description="billing",
        event_types=["membership.credited", "membership.debited"],
        actor=None,
        now=T0,
    )
    receiver.secret = secret
    node = world.node()
    m1, m2 = world.member(), world.member()
    report(node_api, m1)  # m1 connects to the node asking for entitlements
    old_end = _entitlement(node_api, m1)["until"]  # now cached

    # m1 falls silent from minute 10 to 22: a 12-minute disconnect, credited.
    world.post(
        node,
        _gap_beats(world, m1, before=range(0, 11), after=range(22, 31))
        + world.beats(m2, range(0, 31)),
    )
    world.detect()
    world.detect()

    entry = LedgerEntry.objects.exclude(kind=LedgerKind.OPENING).get(member=m1)
    assert entry.minutes == 12
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.verified
    assert got.headers["Kamen-Event-Type"] == "membership.credited"
    event = got.event
    assert event["type"] == "membership.credited"
    assert event["data"]["member"] == m1.member_no
    assert event["data"]["entry"]["id"] == str(entry.public_id)
    assert event["data"]["entry"]["minutes"] == 12
    assert got.headers["Kamen-Event-Id"] == event["id"]

    # The node's look-up (cached before the credit) shows the new end.
    m1.refresh_from_db()
    answer = _entitlement(node_api, m1)
    assert answer["until"] == _iso(m1.expires_at) != old_end
    assert answer["entitled"] is True

    # The receiver answers 503, then is down altogether (connection refused).
    receiver.mode = "fail"
    world.post(
        node,
        world.beats(m2, range(31, 46))
        + world.beats(m2, range(60, 71))
        + world.beats(m1, range(31, 71)),
    )
    world.detect()
    world.detect()
    assert LedgerEntry.objects.filter(member=m2).exclude(kind=LedgerKind.OPENING).count() == 1
    late = WebhookDelivery.objects.get(event__member_no=m2.member_no)
    assert late.status == DeliveryStatus.PENDING and late.attempts == 1
    receiver.stop()
    start = datetime.now(UTC)
    with (
        time_machine.travel(start + timedelta(minutes=5), tick=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sweep_webhook_deliveries.delay()
    late.refresh_from_db()
    assert late.status == DeliveryStatus.PENDING and late.attempts == 2
    assert "refused" in late.last_error.lower() or "connect" in late.last_error.lower()
    # Retries that are not yet due are not sent by a sweep.
    with time_machine.travel(start + timedelta(minutes=5, seconds=1), tick=True):
        sweep_webhook_deliveries.delay()
    late.refresh_from_db()
    assert late.attempts == 2

    # Back up: the next sweep after the back-off delivers it, once.
    receiver.mode = "ok"
    receiver.start()
    with (
        time_machine.travel(start + timedelta(hours=1), tick=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sweep_webhook_deliveries.delay()
        sweep_webhook_deliveries.delay()  # a second beat changes nothing
    late.refresh_from_db()
    assert late.status == DeliveryStatus.SUCCEEDED and late.attempts == 3
    assert DeliveryAttempt.objects.filter(delivery=late).count() == 3

    # Every credit (the members' opening balances are not wanted here).
    entries = list(LedgerEntry.objects.exclude(kind=LedgerKind.OPENING).order_by("seq"))
    delivered = [e["data"]["entry"]["id"] for e in receiver.events()]
    assert sorted(delivered) == sorted(str(e.public_id) for e in entries)  # none lost, none twice
    assert all(r.verified for r in receiver.received)
    assert receiver.refused == 1

    # The pull feed: the same events, in ledger order, with a cursor.
    _token, raw = integration_token_create(name="warehouse", now=T0)
    feed = APIClient()
    feed.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    page = feed.get("/api/v1/events/", {"types": "membership.credited", "limit": 1}).json()
    seen = page["events"]
    while page["has_more"]:
        page = feed.get(
            "/api/v1/events/", {"types": "membership.credited", "after": page["next"]}
        ).json()
        seen += page["events"]
    assert [e["data"]["entry"]["id"] for e in seen] == [str(e.public_id) for e in entries]
    assert {e["id"] for e in seen} == {e["id"] for e in receiver.events()}
    assert [e["sequence"] for e in seen] == sorted(e["sequence"] for e in seen)
    after_all = feed.get("/api/v1/events/", {"after": page["next"]}).json()
    assert after_all["events"] == [] and after_all["next"] == page["next"]
