"""Entitlements for nodes and the event feed: auth, answers, errors, cache."""

import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from appeals.evidence import clean_uploads
from appeals.services import appeal_reject, appeal_submit
from appeals.tests.factories import upload
from compensation.models import IncidentKind, IncidentScope, SourceKind
from compensation.services.credit import compensation_credit
from compensation.services.incidents import incident_close, incident_declare
from integrations.entitlements import KEY
from integrations.services.tokens import integration_token_create, integration_token_revoke
from members.models import MemberStatus
from members.tests.factories import MemberFactory, StaffFactory

from .conftest import report

pytestmark = pytest.mark.django_db


def _member(days=30, **kw):
    return MemberFactory(membership__expires_at=timezone.now() + timedelta(days=days), **kw).member


def test_entitlement_needs_a_node_token(client):
    member = _member()
    assert client.get(f"/api/v1/entitlements/{member.member_no}/").status_code in (401, 403)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer kmn_nope")
    response = bad.get(f"/api/v1/entitlements/{member.member_no}/")
    assert response.status_code == 401 and response.json()["error"] == "authentication_failed"


def test_entitlement_answers_now_and_until_when(node_api):
    active = _member(days=3)
    lapsed = _member(days=-1)
    suspended = _member(days=10)
    suspended.status = MemberStatus.SUSPENDED
    suspended.save(update_fields=["status"])
    report(node_api, active, lapsed, suspended)
    answers = {
        m.member_no: node_api.get(f"/api/v1/entitlements/{m.member_no}/").json()
        for m in (active, lapsed, suspended)
    }
    assert answers[active.member_no]["entitled"] is True
    assert answers[active.member_no]["until"].startswith(active.expires_at.strftime("%Y-%m-%dT"))
    assert answers[lapsed.member_no]["entitled"] is False
    assert answers[suspended.member_no] | {"checked_at": None} == {
        "member": suspended.member_no,
        "entitled": False,
        "until": answers[suspended.member_no]["until"],
        "status": "suspended",
        "checked_at": None,
    }


@pytest.mark.parametrize("number", ["KM99999999", "km00000001", "x" * 300, "KM0000000１"])
def test_unknown_or_malformed_member_is_404(node_api, number):
    response = node_api.get(f"/api/v1/entitlements/{number}/")
    assert response.status_code == 404 and response.json()["error"] == "unknown_member"


def test_batch_answers_the_good_and_names_the_bad(node_api):
    a, b = _member(), _member(days=-2)
    report(node_api, a, b)
    response = node_api.post(
        "/api/v1/entitlements/",
        {"members": [a.member_no, "KM99999999", b.member_no, "bogus"]},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert [(e["member"], e["entitled"]) for e in body["entitlements"]] == [
        (a.member_no, True),
        (b.member_no, False),
    ]
    assert body["rejected"] == [
        {"index": 1, "member": "KM99999999", "code": "unknown_member"},
        {"index": 3, "member": "bogus", "code": "invalid_member_no"},
    ]


@pytest.mark.parametrize(
    "body", [{}, {"members": []}, {"members": ["KM00000001"] * 1001}, {"members": "KM1"}]
)
def test_batch_refuses_a_malformed_body(node_api, body):
    response = node_api.post("/api/v1/entitlements/", body, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"


@pytest.mark.redis
def test_cached_answers_are_replaced_after_a_credit_and_a_status_change(
    node_api, django_capture_on_commit_callbacks
):
    member = _member()
    report(node_api, member)
    url = f"/api/v1/entitlements/{member.member_no}/"
    first = node_api.get(url).json()
    assert cache.get(KEY.format(member.member_no)) is not None
    with CaptureQueriesContext(connection) as queries:
        assert node_api.get(url).json()["until"] == first["until"]
    assert not any("members_memberprofile" in q["sql"] for q in queries.captured_queries)

    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        compensation_credit(
            member_id=member.pk,
            intervals=[(now - timedelta(minutes=20), now)],
            source_kind=SourceKind.DISCONNECT,
            source_ref="d1",
            idempotency_key="d1",
            now=now,
        )
    member.refresh_from_db()
    assert node_api.get(url).json()["until"] != first["until"]
    with django_capture_on_commit_callbacks(execute=True):
        member.status = MemberStatus.CLOSED
        member.save(update_fields=["status"])
    assert node_api.get(url).json()["entitled"] is False


def _feed(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_feed_needs_an_integration_token_and_refuses_node_tokens(node_api, client):
    assert client.get("/api/v1/events/").status_code == 401
    assert node_api.get("/api/v1/events/").status_code == 401
    row, token = integration_token_create(name="crm", now=timezone.now())
    assert _feed(token).get("/api/v1/events/").status_code == 200
    integration_token_revoke(token=row, now=timezone.now())
    assert _feed(token).get("/api/v1/events/").status_code == 401


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"after": "-1"}, "invalid_cursor"),
        ({"after": "abc"}, "invalid_cursor"),
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "501"}, "invalid_limit"),
        ({"types": "membership.stolen"}, "invalid_type"),
    ],
)
def test_feed_names_bad_parameters(query, code):
    _row, token = integration_token_create(name="crm", now=timezone.now())
    response = _feed(token).get("/api/v1/events/", query)
    assert response.status_code == 400 and response.json()["error"] == code


def test_appeal_decisions_and_incidents_are_events_once(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    now = timezone.now()
    member = _member()
    appeal = appeal_submit(
        member=member,
        actor=member.user,
        claimed_start=now - timedelta(minutes=90),
        claimed_end=now - timedelta(minutes=60),
        description="Dropped for half an hour.",
        files=clean_uploads(screenshots=[upload()], logs=[], require_screenshot=True),
        submission_token=uuid.uuid4(),
        now=now,
    )
    staff = StaffFactory(email="rev@example.com")
    appeal_reject(appeal=appeal, staff=staff, reason="No disconnect in the logs.", now=now)
    incident = incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=now - timedelta(hours=1),
        ended_at=None,
        ratio=None,
        title_zh="维护",
        title_en="Maintenance",
        actor=None,
        now=now,
    )
    incident_close(incident=incident, ended_at=now, now=now)
    incident_close(incident=incident, ended_at=now, now=now)
    _row, token = integration_token_create(name="crm", now=now)
    events = (
        _feed(token)
        .get("/api/v1/events/", {"types": "appeal.decided,incident.opened,incident.resolved"})
        .json()["events"]
    )
    assert [e["type"] for e in events] == ["appeal.decided", "incident.opened", "incident.resolved"]
    assert events[0]["data"]["appeal"]["outcome"] == "rejected"
    assert events[0]["data"]["member"] == member.member_no
    assert events[2]["data"]["incident"]["status"] == "closed"
