"""Hostile heartbeat batches get a 4xx with a stable code, never a 500, and
identifiers are matched whole (issue 9)."""

import json

import pytest
from django.utils import timezone

from compensation.services.ingest import heartbeats_ingest
from compensation.services.nodes import node_create
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/heartbeats/"


@pytest.fixture
def node_token(db):
    _node, token = node_create(name="hostile-node", now=timezone.now())
    return token


def _post(client, token, body, content_type="application/json"):
    return client.post(
        URL, data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}"
    )


@pytest.mark.parametrize(
    "body",
    [
        "[" * 2000 + "]" * 2000,
        '{"heartbeats":' + "[" * 2000 + "]" * 2000 + "}",
        '{"a":' * 2000 + "1" + "}" * 2000,
        # Under the interpreter's recursion limit, over ours.
        '{"heartbeats": [' + "[" * 200 + "]" * 200 + "]}",
    ],
)
def test_deeply_nested_json_is_a_400_json_too_deep(client, node_token, body):
    response = _post(client, node_token, body)
    assert response.status_code == 400
    assert response.json()["error"] == "json_too_deep"


@pytest.mark.parametrize("body", ["[]", '"x"', "123", "null", "[{}]"])
def test_json_that_is_not_an_object_is_a_400_invalid_body(client, node_token, body):
    response = _post(client, node_token, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"


def test_nan_is_refused_as_invalid_json(client, node_token):
    response = _post(client, node_token, '{"heartbeats": [], "x": NaN}')
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_bytes_that_are_not_utf8_are_invalid_json(client, node_token):
    response = _post(client, node_token, b'{"heartbeats": ["\xff\xfe"]}')
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_wrong_content_type_is_a_415_with_a_code(client, node_token):
    response = _post(client, node_token, "heartbeats", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_missing_token_is_a_401_with_a_code(client, db):
    response = client.post(URL, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("session", "sess-1\n", "invalid_session"),
        ("session", "sess-1\r", "invalid_session"),
        ("member", "{member}\n", "invalid_member"),
        ("member", "KM１２３４５６７８", "invalid_member"),  # full-width digits
        ("member", "KM٠١٢٣٤٥٦٧", "invalid_member"),  # Arabic-Indic digits
    ],
)
def test_identifiers_must_match_whole(field, value, code):
    node, _token = node_create(name="ids", now=timezone.now())
    member = MemberFactory().member
    item = {"member": member.member_no, "session": "sess-1", "at": timezone.now().isoformat()}
    item[field] = value.format(member=member.member_no)
    result = heartbeats_ingest(node=node, payload={"heartbeats": [item]}, now=timezone.now())
    assert result.accepted == 0
    assert [r["code"] for r in result.rejected] == [code]


def test_errors_are_in_chinese_by_default_and_english_on_request(client, node_token):
    body = json.dumps({"heartbeats": "nope"})
    chinese = _post(client, node_token, body).json()
    client.cookies["django_language"] = "en"
    english = _post(client, node_token, body).json()
    assert chinese["error"] == english["error"] == "invalid_body"
    assert english["detail"] == '"heartbeats" must be a list.'
    assert chinese["detail"] != english["detail"]


@pytest.mark.parametrize("page", ["", "last", "abc", "1.5", "-1", "１"])
def test_a_page_that_is_not_a_whole_number_is_a_400_invalid_page(member_client, page):
    response = member_client.get("/api/v1/me/disconnects/", {"page": page})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_page"


def test_a_page_past_the_end_is_a_404(member_client):
    assert member_client.get("/api/v1/me/disconnects/?page=1").status_code == 200
    response = member_client.get("/api/v1/me/disconnects/?page=2")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
