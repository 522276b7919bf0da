"""POST /api/v1/heartbeats/ exactly as DESIGN section 6 says, and the member API."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from compensation.models import Node
from compensation.services.nodes import node_create, node_revoke, node_rotate_token
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/heartbeats/"


@pytest.fixture
def node_token(store):
    _node, token = node_create(name="api-node", now=timezone.now())
    return token


def _post(client, token, body, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        URL,
        data=data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **extra,
    )


def _item(member_no, minutes_ago=1, **overrides):
    item = {
        "member": member_no,
        "session": "sess-1",
        "at": (timezone.now() - timedelta(minutes=minutes_ago)).isoformat(),
        "state": "alive",
    }
    item.update(overrides)
    return item


def test_valid_batch_is_accepted_with_202(client, node_token):
    member = MemberFactory().member
    response = _post(
        client, node_token, {"heartbeats": [_item(member.member_no, 2), _item(member.member_no, 1)]}
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": []}


def test_one_bad_item_does_not_sink_the_batch_and_is_named(client, node_token):
    member = MemberFactory().member
    now = timezone.now()
    items = [
        _item(member.member_no),
        _item("KM99999999"),  # unknown member
        _item(member.member_no, at="yesterday"),  # malformed time
        _item(
            member.member_no, at=(now - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
        ),  # naive
        _item(member.member_no, at=(now + timedelta(hours=1)).isoformat()),  # future
        _item(member.member_no, state="sleeping"),
        _item("not-a-number"),
        "not an object",
        _item(member.member_no, session="bad session id with spaces"),
        _item(member.member_no, at=(now - timedelta(days=30)).isoformat()),  # too old
    ]
    response = _post(client, node_token, {"heartbeats": items})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    codes = {r["index"]: r["code"] for r in body["rejected"]}
    assert codes == {
        1: "unknown_member",
        2: "invalid_time",
        3: "naive_time",
        4: "time_in_future",
        5: "invalid_state",
        6: "invalid_member",
        7: "invalid_item",
        8: "invalid_session",
        9: "time_too_old",
    }
    assert all(r["error"] for r in body["rejected"])


def test_small_clock_skew_is_allowed(client, node_token):
    member = MemberFactory().member
    ahead = (timezone.now() + timedelta(seconds=60)).isoformat()
    response = _post(client, node_token, {"heartbeats": [_item(member.member_no, at=ahead)]})
    assert response.json()["accepted"] == 1


def test_missing_token_is_401(client, store):
    response = client.post(URL, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]


def test_wrong_token_is_401(client, node_token):
    assert _post(client, "kmn_wrong", {"heartbeats": []}).status_code == 401
    response = client.post(
        URL, data="{}", content_type="application/json", HTTP_AUTHORIZATION="Basic abc"
    )
    assert response.status_code == 401


def test_revoked_token_is_401_and_rotation_replaces_it(client, store):
    node, token = node_create(name="rotating", now=timezone.now())
    node_revoke(node=node, now=timezone.now())
    assert _post(client, token, {"heartbeats": []}).status_code == 401
    new_token = node_rotate_token(node=node, now=timezone.now())
    assert _post(client, new_token, {"heartbeats": []}).status_code == 202
    assert _post(client, token, {"heartbeats": []}).status_code == 401


def test_tokens_are_stored_only_as_hashes(store):
    node, token = node_create(name="hashed", now=timezone.now())
    stored = Node.objects.get(pk=node.pk)
    assert token not in (stored.token_hash, stored.token_prefix)
    assert len(stored.token_hash) == 64


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("{not json", 400, None),
        ("[]", 400, "invalid_body"),
        (json.dumps({"heartbeats": "nope"}), 400, "invalid_body"),
        (json.dumps({"beats": []}), 400, "invalid_body"),
        ("", 400, None),
    ],
)
def test_malformed_bodies_get_clear_400s(client, node_token, body, status, error):
    response = _post(client, node_token, body)
    assert response.status_code == status
    if error:
        assert response.json()["error"] == error
        assert response.json()["detail"]


def test_oversized_batch_is_refused(client, node_token):
    member = MemberFactory().member
    response = _post(client, node_token, {"heartbeats": [_item(member.member_no)] * 1001})
    assert response.status_code == 413
    assert response.json()["error"] == "batch_too_large"


def test_oversized_body_is_refused_before_parsing(client, node_token):
    response = _post(client, node_token, "x" * (2 * 1024 * 1024 + 10))
    assert response.status_code == 413


def test_wrong_content_type_is_415(client, node_token):
    response = client.post(
        URL,
        data="a=b",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {node_token}",
    )
    assert response.status_code == 415


def test_node_is_throttled_per_node(client, node_token, settings):
    settings.NODE_THROTTLE_RATE = "3/minute"
    codes = [_post(client, node_token, {"heartbeats": []}).status_code for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]


def test_node_token_does_not_open_the_member_api(client, node_token):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {node_token}")
    assert response.status_code in (401, 403)


def test_create_node_prints_the_token_alone_on_its_last_line(capsys, store):
    call_command("create_node", "cli-node")
    lines = capsys.readouterr().out.strip().splitlines()
    token = lines[-1]
    assert token.startswith("kmn_") and " " not in token
    from compensation.services.nodes import node_authenticate

    assert node_authenticate(token=token).name == "cli-node"


def test_create_node_refuses_a_duplicate_name(store):
    from django.core.management.base import CommandError

    call_command("create_node", "dup-node")
    with pytest.raises(CommandError):
        call_command("create_node", "dup-node")


def test_me_api_shows_only_the_signed_in_member(member_client, member_user):
    response = member_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["member_no"] == member_user.member.member_no
    assert response.json()["membership_active"] is True


def test_me_api_requires_login(client, db):
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_schema_documents_the_interfaces(client, db):
    schema = client.get(reverse("api-schema")).content.decode()
    for path in (
        "/api/v1/heartbeats/",
        "/api/v1/me/",
        "/api/v1/me/disconnects/",
        "/api/v1/me/compensations/",
    ):
        assert path in schema
