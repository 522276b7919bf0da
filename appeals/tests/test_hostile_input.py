"""Input a reviewer used to get 500s from the appeal API and pages: each is
now a 4xx with a stable error code (issue 9)."""

import io
from datetime import timedelta

import pytest
from django.test import Client
from PIL import Image

from appeals import evidence
from appeals.evidence import MAX_PIXELS_PER_REQUEST, EvidenceError, clean_uploads
from appeals.models import Appeal
from appeals.tests.factories import upload
from appeals.tests.test_evidence import _png_header_only
from compensation.models import Disconnect, Node

pytestmark = pytest.mark.django_db

CSRF = "a" * 32
DEEP_ARRAY = "[" * 2000 + "]" * 2000
DEEP_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000


@pytest.fixture
def api(member):
    """A member's browser session as the real app sees it: CSRF enforced, so
    the body is parsed while authenticating (where withdraw used to 500)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    client.cookies["csrftoken"] = CSRF
    return client


@pytest.fixture
def browser(client, member):
    client.force_login(member.user)
    return client


def _post(api, url, body, content_type="application/json"):
    return api.post(url, body, content_type=content_type, HTTP_X_CSRFTOKEN=CSRF)


@pytest.fixture
def appeal_id(api, now):
    response = api.post(
        "/api/v1/appeals/",
        {
            "claimed_start": (now - timedelta(minutes=90)).isoformat(),
            "claimed_end": (now - timedelta(minutes=60)).isoformat(),
            "description": "Dropped.",
            "screenshots": [upload()],
        },
        HTTP_X_CSRFTOKEN=CSRF,
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _url(which: str, appeal_id: str) -> str:
    return {
        "create": "/api/v1/appeals/",
        "reply": f"/api/v1/appeals/{appeal_id}/replies/",
        "withdraw": f"/api/v1/appeals/{appeal_id}/withdraw/",
    }[which]


@pytest.mark.parametrize("which", ["create", "reply", "withdraw"])
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, "[" * 40 + "]" * 40])
def test_deeply_nested_json_is_a_400_json_too_deep(api, appeal_id, which, body):
    response = _post(api, _url(which, appeal_id), body)
    assert response.status_code == 400
    if body.startswith("[") and len(body) < 100:
        # 40 levels parse fine but are not an object: refused as such first.
        assert response.json()["error"] == "invalid_body"
    else:
        assert response.json()["error"] == "json_too_deep"


def test_json_object_nested_past_the_limit_but_under_recursion_is_refused(api, appeal_id):
    body = '{"description":' + "[" * 100 + "]" * 100 + "}"
    response = _post(api, "/api/v1/appeals/", body)
    assert response.status_code == 400
    assert response.json()["error"] == "json_too_deep"


@pytest.mark.parametrize("which", ["create", "reply", "withdraw"])
@pytest.mark.parametrize("body", ["[]", '"x"', "123", "null", "true"])
def test_json_that_is_not_an_object_is_a_400_invalid_body(api, appeal_id, which, body):
    response = _post(api, _url(which, appeal_id), body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"
    assert response.json()["detail"]


def test_broken_json_names_where_it_broke(api):
    response = _post(api, "/api/v1/appeals/", '{"description": ')
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_nan_is_not_json(api):
    response = _post(api, "/api/v1/appeals/", '{"description": NaN}')
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_unknown_content_type_is_a_415_with_a_code(api, appeal_id):
    for which in ("create", "reply", "withdraw"):
        response = _post(api, _url(which, appeal_id), "<x/>", content_type="application/xml")
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_media_type"


def test_broken_multipart_is_a_400_invalid_multipart(api):
    response = _post(
        api, "/api/v1/appeals/", b"--x\r\nnonsense", content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_multipart"


def test_a_field_of_the_wrong_type_is_a_400_invalid_naming_the_field(api):
    response = _post(api, "/api/v1/appeals/", '{"description": {"a": 1}}')
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert "description" in body["fields"]


def test_missing_csrf_token_is_a_403_csrf_failed(member, appeal_id):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    response = client.post(f"/api/v1/appeals/{appeal_id}/withdraw/")
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


# --- disconnects without an end ---------------------------------------------


def _disconnect(member, now, status):
    node = Node.objects.create(name="n1", token_hash="h" * 64, token_prefix="kmn_h")
    return Disconnect.objects.create(
        member=member,
        node=node,
        session_id="s",
        started_at=now - timedelta(minutes=50),
        status=status,
        detected_at=now,
    )


def test_api_appeal_on_an_ongoing_disconnect_is_a_409_disconnect_ongoing(api, member, now):
    disconnect = _disconnect(member, now, "open")
    response = api.post(
        "/api/v1/appeals/",
        {"disconnect": str(disconnect.public_id), "description": "x", "screenshots": [upload()]},
        HTTP_X_CSRFTOKEN=CSRF,
    )
    assert response.status_code == 409
    assert response.json()["error"] == "disconnect_ongoing"
    assert not Appeal.objects.exists()


def test_api_appeal_on_an_unresolved_disconnect_needs_the_members_end(api, member, now):
    disconnect = _disconnect(member, now, "unresolved")
    data = {"disconnect": str(disconnect.public_id), "description": "x", "screenshots": [upload()]}
    response = api.post("/api/v1/appeals/", data, HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 400
    assert response.json()["error"] == "end_required"

    end = now - timedelta(minutes=20)
    response = api.post(
        "/api/v1/appeals/",
        {**data, "screenshots": [upload()], "claimed_end": end.isoformat()},
        HTTP_X_CSRFTOKEN=CSRF,
    )
    assert response.status_code == 201, response.content
    appeal = Appeal.objects.get()
    assert (appeal.disconnect, appeal.claimed_start, appeal.claimed_end) == (
        disconnect,
        disconnect.started_at,
        end,
    )


def test_page_for_an_ongoing_disconnect_explains_instead_of_failing(browser, member, now):
    disconnect = _disconnect(member, now, "open")
    url = f"/appeals/new/?disconnect={disconnect.public_id}"
    page = browser.get(url)
    assert page.status_code == 200
    # Refused before any upload, with filing's own code.
    assert page.context["check"].error.code == "disconnect_ongoing"
    assert 'data-code="disconnect_ongoing"' in page.content.decode()
    assert 'name="screenshots"' not in page.content.decode()
    response = browser.post(
        "/appeals/new/",
        {
            "submission_token": "6f1f1f1f-1f1f-4f1f-8f1f-1f1f1f1f1f1f",
            "disconnect": str(disconnect.public_id),
            "description": "still down",
            "screenshots": [upload()],
        },
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert not Appeal.objects.exists()


def test_page_for_an_unresolved_disconnect_asks_for_the_end(browser, member, now):
    disconnect = _disconnect(member, now, "unresolved")
    page = browser.get(f"/appeals/new/?disconnect={disconnect.public_id}")
    assert page.status_code == 200
    assert 'name="claimed_end"' in page.content.decode()
    assert page.context["check"].error.code == "end_required"
    data = {
        "submission_token": "6f1f1f1f-1f1f-4f1f-8f1f-1f1f1f1f1f1f",
        "disconnect": str(disconnect.public_id),
        "description": "never came back",
        "screenshots": [upload()],
    }
    response = browser.post("/appeals/new/", data)
    assert response.status_code == 200
    assert "claimed_end" in response.context["form"].errors
    end = (now - timedelta(minutes=20)).astimezone()
    response = browser.post(
        "/appeals/new/",
        {**data, "screenshots": [upload()], "claimed_end": end.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.status_code == 302
    assert Appeal.objects.get().disconnect == disconnect


# --- decoding budget per request --------------------------------------------


def _blank_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG")
    return out.getvalue()


def test_ten_blank_36_megapixel_pngs_are_refused_before_decoding(api, monkeypatch):
    """The reviewer's request: ten 6000 × 6000 PNGs, about 100 KB each, under
    the per-image limit; decoding them all cost 7 s of CPU."""
    decoded = []
    monkeypatch.setattr(evidence, "_decode_screenshot", decoded.append)
    png = _blank_png(6000, 6000)
    assert len(png) < 200_000
    response = api.post(
        "/api/v1/appeals/",
        {
            "claimed_start": "2026-11-20T10:00:00+08:00",
            "claimed_end": "2026-11-20T10:30:00+08:00",
            "description": "x",
            "screenshots": [upload(f"shot{i}.png", png) for i in range(10)],
        },
        HTTP_X_CSRFTOKEN=CSRF,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "too_many_pixels_total"
    assert response.json()["file"] == "shot1.png"  # 36 + 36 MP crosses 60 MP
    assert "shot1.png" in response.json()["detail"]
    assert decoded == []


def test_three_12_megapixel_photos_fit_the_budget(monkeypatch):
    decoded = []
    monkeypatch.setattr(evidence, "_decode_screenshot", lambda probed: decoded.append(probed))
    files = [upload(f"p{i}.png", _png_header_only(4000, 3000)) for i in range(3)]
    clean_uploads(screenshots=files, logs=[], require_screenshot=True)
    assert len(decoded) == 3
    assert MAX_PIXELS_PER_REQUEST >= 3 * 12_000_000


def test_budget_is_checked_on_headers_across_all_files(monkeypatch):
    monkeypatch.setattr(evidence, "_decode_screenshot", lambda probed: pytest.fail("decoded"))
    files = [upload(f"p{i}.png", _png_header_only(8000, 5000)) for i in range(2)]
    with pytest.raises(EvidenceError) as info:
        clean_uploads(screenshots=files, logs=[], require_screenshot=True)
    assert (info.value.code, info.value.filename) == ("too_many_pixels_total", "p1.png")


def test_page_shows_the_budget_error_on_the_screenshots_field(member_client, monkeypatch):
    monkeypatch.setattr(evidence, "_decode_screenshot", lambda probed: pytest.fail("decoded"))
    response = member_client.post(
        "/appeals/new/",
        {
            "submission_token": "6f1f1f1f-1f1f-4f1f-8f1f-1f1f1f1f1f1f",
            "claimed_start": "2026-11-20T10:00",
            "claimed_end": "2026-11-20T10:30",
            "description": "kept text",
            "screenshots": [upload(f"p{i}.png", _png_header_only(8000, 5000)) for i in range(2)],
        },
    )
    assert response.status_code == 200
    assert "p1.png" in str(response.context["form"].errors["screenshots"])


def test_reply_past_ten_screenshots_in_total_is_a_409(api, appeal_id):
    url = f"/api/v1/appeals/{appeal_id}/replies/"
    files = [upload(f"s{i}.png") for i in range(9)]
    assert api.post(url, {"screenshots": files}, HTTP_X_CSRFTOKEN=CSRF).status_code == 200
    response = api.post(url, {"screenshots": [upload()]}, HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 409
    assert response.json()["error"] == "too_many_files"


def test_more_than_ten_screenshots_in_one_request_is_a_400(api, appeal_id):
    url = f"/api/v1/appeals/{appeal_id}/replies/"
    files = [upload(f"s{i}.png") for i in range(11)]
    response = api.post(url, {"screenshots": files}, HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 400
    assert response.json()["error"] == "too_many_files"
