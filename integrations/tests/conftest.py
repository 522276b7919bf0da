import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compensation import store as store_module
from compensation.services.nodes import node_create
from compensation.tests.conftest import T0, World
from kamen_portal.celery import app as celery_app

from .receiver import Receiver


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def loopback_allowed(settings):
    """Tests receive webhooks on 127.0.0.1, which production refuses."""
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    return settings


@pytest.fixture
def receiver(loopback_allowed):
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def world(db, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(store_module, "_store", store_module.DatabaseStore())
    return World(django_capture_on_commit_callbacks)


@pytest.fixture
def node_api(db):
    _node, token = node_create(name="edge-01", now=T0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def report(node_client, *members, session="s1", at=None):
    """The node reports each member's heartbeat (as on connect), so it may
    read their entitlements."""
    at = (at or timezone.now()).isoformat()
    beats = [
        {"member": m.member_no, "session": session, "at": at, "state": "alive"} for m in members
    ]
    response = node_client.post("/api/v1/heartbeats/", {"heartbeats": beats}, format="json")
    assert response.status_code == 202 and response.json()["accepted"] == len(members)
