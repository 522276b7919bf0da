"""Each kind of machine token opens its own doors and no other: a node token
cannot read the event feed or post membership events, a platform's write
token cannot report heartbeats or read entitlements, an integration's read
token cannot write anything. All three share one authentication class, so
this is where a mistake in it would show."""

import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compensation.models import Node
from compensation.services.nodes import node_create, node_revoke
from compensation.services.platforms import platform_create
from integrations.services.tokens import integration_token_create
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _call(token: str, method: str, path: str, body: dict | None = None):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    if method == "GET":
        return client.get(path)
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def doors():
    member = MemberFactory().member
    beat = {"member": member.member_no, "session": "s1", "at": timezone.now().isoformat()}
    # In this order: a node reads the entitlements of members it reported.
    return {
        "heartbeats": ("POST", "/api/v1/heartbeats/", {"heartbeats": [beat]}, 202),
        "entitlements": ("GET", f"/api/v1/entitlements/{member.member_no}/", None, 200),
        "entitlement batch": (
            "POST",
            "/api/v1/entitlements/",
            {"members": [member.member_no]},
            200,
        ),
        "membership events": ("POST", "/api/v1/memberships/events/", {"events": []}, 200),
        "event feed": ("GET", "/api/v1/events/", None, 200),
    }


@pytest.fixture
def tokens():
    now = timezone.now()
    _node, node = node_create(name="door-node", now=now)
    _platform, platform = platform_create(name="door-platform", now=now)
    _integration, integration = integration_token_create(name="door-feed", now=now)
    return {"node": node, "platform": platform, "integration": integration}


OPENS = {
    "node": {"heartbeats", "entitlements", "entitlement batch"},
    "platform": {"membership events"},
    "integration": {"event feed"},
}


@pytest.mark.parametrize("kind", sorted(OPENS))
def test_a_machine_token_opens_its_own_doors_only(kind, doors, tokens):
    for door, (method, path, body, ok) in doors.items():
        response = _call(tokens[kind], method, path, body)
        if door in OPENS[kind]:
            assert response.status_code == ok, (kind, door, response.content)
        else:
            # Refused as a wrong token for that door, never let through.
            assert response.status_code in (401, 403), (kind, door, response.status_code)
            assert response.json()["error"] in ("authentication_failed", "permission_denied")


def test_a_revoked_node_token_is_refused_at_once(tokens):
    node_revoke(node=Node.objects.get(name="door-node"), now=timezone.now())
    response = _call(tokens["node"], "POST", "/api/v1/heartbeats/", {"heartbeats": []})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="nodes"'
