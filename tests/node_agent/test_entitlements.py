"""The agent's entitlement check against the live portal (real HTTP, real
API, test database): answers, the local cache, prefetch, and the last answer
kept while the portal is unreachable. A node reads the entitlements of the
members it reported, so each member's first heartbeat goes first, as on
connect; a member of another node is as unknown as a number nobody holds."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from kamen_node_agent.entitlements import EntitlementClient
from kamen_node_agent.sender import Client

from compensation.models import SourceKind
from compensation.services.credit import compensation_credit
from compensation.services.nodes import node_create
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _connect(url: str, token: str, *members) -> None:
    """The node reports each member's first heartbeat, as when they connect."""
    at = datetime.now(UTC).isoformat()
    beats = [{"member": m.member_no, "session": "s1", "at": at, "state": "alive"} for m in members]
    reply = Client(url, token, timeout=20).post(beats)
    assert reply.status == 202 and reply.body["accepted"] == len(members)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_check_entitlement_admits_refuses_caches_and_survives_an_outage(live_server):
    now = timezone.now()
    _node, token = node_create(name="edge-agent", now=now)
    active = MemberFactory(membership__expires_at=now + timedelta(days=2)).member
    lapsed = MemberFactory(membership__expires_at=now - timedelta(days=1)).member
    elsewhere = MemberFactory(membership__expires_at=now + timedelta(days=2)).member
    _connect(live_server.url, token, active, lapsed)
    _other, other_token = node_create(name="edge-other", now=now)
    _connect(live_server.url, other_token, elsewhere)
    clock = Clock()
    agent = EntitlementClient(live_server.url, token, ttl=30, timeout=20, clock=clock)

    first = agent.check_entitlement(active.member_no)
    assert first.entitled() and not first.from_cache
    assert first.until == active.expires_at.astimezone(UTC)
    assert not agent.check_entitlement(lapsed.member_no).entitled()
    assert not agent.check_entitlement("KM99999999").entitled()
    # Connected to another node: this one learns nothing about them.
    other = agent.check_entitlement(elsewhere.member_no)
    assert not other.known and not other.entitled() and not other.stale
    asked = agent.requests
    assert agent.check_entitlement(active.member_no).from_cache
    assert agent.requests == asked  # answered locally

    # Time is credited; once the local answer is older than the ttl the
    # agent asks again and admits the member until the new end.
    compensation_credit(
        member_id=active.pk,
        intervals=[(now - timedelta(minutes=45), now)],
        source_kind=SourceKind.DISCONNECT,
        source_ref="agent-test",
        idempotency_key="agent-test",
        now=now,
    )
    active.refresh_from_db()
    clock.now += 31
    again = agent.check_entitlement(active.member_no)
    assert again.until == active.expires_at.astimezone(UTC) == first.until + timedelta(minutes=45)

    # The portal goes away: the last answer holds until its own end.
    agent.base = _dead_url() + "/api/v1/entitlements/"
    clock.now += 3600
    stale = agent.check_entitlement(active.member_no)
    assert stale.stale and stale.entitled()
    assert not stale.entitled(now=active.expires_at.astimezone(UTC) + timedelta(seconds=1))
    nobody = agent.check_entitlement("KM12345678")
    assert nobody.stale and not nobody.entitled()


def test_prefetch_fills_the_cache_with_one_request(live_server):
    now = timezone.now()
    _node, token = node_create(name="edge-prefetch", now=now)
    members = [
        MemberFactory(membership__expires_at=now + timedelta(days=1)).member for _ in range(3)
    ]
    _connect(live_server.url, token, *members)
    agent = EntitlementClient(live_server.url, token, timeout=20, clock=Clock())
    numbers = [m.member_no for m in members] + ["KM99999998"]
    assert agent.prefetch(numbers) == 3
    assert agent.requests == 1
    assert all(agent.check_entitlement(n).entitled() for n in numbers[:3])
    assert not agent.check_entitlement("KM99999998").entitled()
    assert agent.requests == 1
    assert datetime.now(UTC) < agent.check_entitlement(numbers[0]).until
