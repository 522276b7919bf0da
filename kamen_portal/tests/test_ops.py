"""Operator endpoints: liveness, readiness against the real services, metrics."""

import pytest
from django.db import connection
from django.utils import timezone

from compensation.services.nodes import node_create
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


def test_healthz_answers_when_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ready_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_readyz_fails_when_postgres_is_unreachable(client):
    """Point the connection at a port where no PostgreSQL listens: the real
    driver fails to connect and readiness says so."""
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original
    assert response.status_code == 503
    assert response.json()["checks"]["database"] != "ok"
    assert client.get("/readyz").status_code == 200  # and recovers with the database


@pytest.mark.redis
def test_readyz_fails_when_redis_is_down(client, broker, settings):
    settings.REDIS_URL = broker.url
    assert client.get("/readyz").status_code == 200
    broker.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] != "ok" and checks["broker"] != "ok"


def test_metrics_are_protected(client, settings):
    assert client.get("/metrics").status_code == 403
    client.force_login(MemberFactory())
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    client.logout()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    # A staff session that passed the two-factor sign-in (kamen_portal.staff_gate).
    staff_login(client, StaffFactory())
    assert client.get("/metrics").status_code == 200


def test_metrics_count_heartbeats_requests_and_credits(client, settings):
    import json

    settings.METRICS_TOKEN = "t"
    member = MemberFactory().member
    _node, token = node_create(name="m-node", now=timezone.now())
    body = {
        "heartbeats": [
            {"member": member.member_no, "session": "s", "at": timezone.now().isoformat()},
            {"member": "KM00000000", "session": "s", "at": timezone.now().isoformat()},
        ]
    }
    client.post(
        "/api/v1/heartbeats/",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    assert "kamen_heartbeats_ingested_total 1" in text
    assert "kamen_heartbeats_rejected_total 1" in text
    assert 'kamen_http_request_duration_seconds_bucket{le="+Inf"}' in text
    assert "kamen_compensation_credited_seconds" in text and "kamen_celery_queue_depth{" in text
