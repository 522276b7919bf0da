"""A node learns entitlements only of its own members (those it reported a
heartbeat for), on both heartbeat stores; any other number answers exactly
as a number nobody holds; the throttle counts members looked up."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from compensation import store as store_module
from compensation.services.nodes import node_create
from compensation.tests.conftest import (
    _redis_store,
    store,  # noqa: F401 -- both heartbeat stores
)
from members.tests.factories import MemberFactory

from .conftest import report

pytestmark = pytest.mark.django_db


def _node(name: str) -> APIClient:
    _node, token = node_create(name=name, now=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _member(days=30):
    return MemberFactory(membership__expires_at=timezone.now() + timedelta(days=days)).member


def _answer(client, number):
    response = client.get(f"/api/v1/entitlements/{number}/")
    return response.status_code, response.json()


def test_a_node_reads_its_own_members_and_others_answer_as_nobody(store):  # noqa: F811
    node_a, node_b = _node("node-a"), _node("node-b")
    mine, theirs, idle = _member(), _member(), _member()
    report(node_a, mine)
    report(node_b, theirs)

    status, body = _answer(node_a, mine.member_no)
    assert status == 200 and body["entitled"] is True
    nobody = _answer(node_a, "KM99999999")
    assert nobody[0] == 404 and nobody[1]["error"] == "unknown_member"
    # A member of another node, a member of no node and a number nobody
    # holds: the same answer, byte for byte.
    assert _answer(node_a, theirs.member_no) == nobody
    assert _answer(node_a, idle.member_no) == nobody
    assert _answer(node_b, theirs.member_no)[0] == 200

    numbers = [mine.member_no, theirs.member_no, idle.member_no, "KM99999999", "bad"]
    batch = node_a.post("/api/v1/entitlements/", {"members": numbers}, format="json").json()
    assert [e["member"] for e in batch["entitlements"]] == [mine.member_no]
    assert batch["rejected"] == [
        {"index": 1, "member": theirs.member_no, "code": "unknown_member"},
        {"index": 2, "member": idle.member_no, "code": "unknown_member"},
        {"index": 3, "member": "KM99999999", "code": "unknown_member"},
        {"index": 4, "member": "bad", "code": "invalid_member_no"},
    ]


def test_a_logged_out_member_stays_readable_and_a_long_gone_one_does_not(
    store,  # noqa: F811
    settings,
):
    settings.ENTITLEMENT_SCOPE_DAYS = 30
    node = _node("node-a")
    member = _member(days=90)
    now = timezone.now()
    report(node, member, at=now - timedelta(minutes=5))
    ended = {"member": member.member_no, "session": "s1", "at": now.isoformat(), "state": "ended"}
    node.post("/api/v1/heartbeats/", {"heartbeats": [ended]}, format="json")
    assert _answer(node, member.member_no)[0] == 200
    with time_machine.travel(now + timedelta(days=29), tick=False):
        assert _answer(node, member.member_no)[0] == 200
    with time_machine.travel(now + timedelta(days=31), tick=False):
        assert _answer(node, member.member_no)[0] == 404


def test_the_throttle_counts_members_not_requests(store, settings):  # noqa: F811
    settings.ENTITLEMENT_THROTTLE_RATE = "5/minute"
    node = _node("node-a")
    members = [_member() for _ in range(4)]
    report(node, *members)
    numbers = [m.member_no for m in members]
    assert (
        node.post("/api/v1/entitlements/", {"members": numbers}, format="json").status_code == 200
    )
    # Four counted: two more members are over the five a minute, one is not.
    refused = node.post("/api/v1/entitlements/", {"members": numbers[:2]}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"] == "throttled"
    assert _answer(node, numbers[0])[0] == 200
    assert node.get(f"/api/v1/entitlements/{numbers[1]}/").status_code == 429


def test_a_batch_larger_than_the_rate_is_admitted_into_an_empty_window(store, settings):  # noqa: F811
    settings.ENTITLEMENT_THROTTLE_RATE = "3/minute"
    node = _node("node-a")
    members = [_member() for _ in range(4)]
    report(node, *members)
    numbers = [m.member_no for m in members]
    first = node.post("/api/v1/entitlements/", {"members": numbers}, format="json")
    assert first.status_code == 200 and len(first.json()["entitlements"]) == 4
    again = node.post("/api/v1/entitlements/", {"members": numbers}, format="json")
    assert again.status_code == 429 and int(again["Retry-After"]) > 0


@pytest.mark.redis
def test_a_scoped_batch_from_the_redis_cache_reads_no_member_rows(monkeypatch):
    """The hot path: the node's member index (one ZMSCORE) and the cache (one
    MGET); the database only for the node's token."""
    redis_store = _redis_store()
    monkeypatch.setattr(store_module, "_store", redis_store)
    node = _node("node-a")
    members = [_member() for _ in range(50)]
    report(node, *members)
    body = {"members": [m.member_no for m in members]}
    assert len(node.post("/api/v1/entitlements/", body, format="json").json()["entitlements"]) == 50
    with CaptureQueriesContext(connection) as queries:
        answer = node.post("/api/v1/entitlements/", body, format="json").json()
    assert len(answer["entitlements"]) == 50
    assert not any("members_memberprofile" in q["sql"] for q in queries.captured_queries)
    assert len(queries.captured_queries) <= 2
    redis_store.reset()
