"""Every signed checkpoint of the ledger's transparency log is one
``ledger.checkpoint`` event, on the feed and on webhooks, carrying the note a
platform keeps to witness the log (docs/integration.md §4 and §7)."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compensation.log_keys import log_verifier
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tlog_notes import open_checkpoint, parse_verifier_key
from integrations.models import Event, EventType, WebhookDelivery
from integrations.services.tokens import integration_token_create
from integrations.services.webhooks import endpoint_create
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def log_key(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.LEDGER_LOG_KEY_FILE = ""
    settings.LEDGER_LOG_SIGNING_KEY = ""
    return settings


def _member(now):
    return MemberFactory(membership__expires_at=now + timedelta(days=30)).member


def _feed(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_each_published_checkpoint_is_one_event_with_its_signed_note(
    receiver, django_capture_on_commit_callbacks
):
    now = timezone.now()
    _endpoint, receiver.secret = endpoint_create(
        url=receiver.url, description="", event_types=["ledger.checkpoint"], actor=None, now=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        _member(now)
        _member(now)
        ledger_publish_head(now=now)
    # The tree did not grow: nothing is re-signed, so no second event.
    with django_capture_on_commit_callbacks(execute=True):
        ledger_publish_head(now=now + timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        _member(now)
        ledger_publish_head(now=now + timedelta(minutes=2))

    _row, token = integration_token_create(name="crm", now=now)
    events = _feed(token).get("/api/v1/events/", {"types": "ledger.checkpoint"}).json()["events"]
    assert [e["type"] for e in events] == ["ledger.checkpoint"] * 2
    sizes = [e["data"]["checkpoint"]["size"] for e in events]
    assert sizes == [2, 3]
    key = parse_verifier_key(log_verifier().vkey)
    for event in events:
        data = event["data"]["checkpoint"]
        opened = open_checkpoint(data["note"], key)
        assert opened.checkpoint.size == data["size"]
        assert base64.b64decode(data["root"]) == opened.checkpoint.root_hash
        assert event["data"].get("member") is None

    # Webhooks carry the same envelope.
    assert WebhookDelivery.objects.count() == 2
    pushed = [r.event for r in receiver.received]
    assert [p["data"]["checkpoint"]["size"] for p in pushed] == [2, 3]
    assert pushed[1]["data"]["checkpoint"]["note"] == events[1]["data"]["checkpoint"]["note"]
    assert Event.objects.filter(type=EventType.LEDGER_CHECKPOINT).count() == 2
