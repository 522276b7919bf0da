"""The published OpenAPI schema says what the API really does (issue 9):
uploads are binary files, every error is documented with its body, and
POST-only actions offer no GET. One error shape for every refusal."""

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_uploads_are_documented_as_binary_multipart(schema):
    for name in ("AppealCreateRequest", "AppealReplyRequest"):
        properties = schema["components"]["schemas"][name]["properties"]
        for field in ("screenshots", "logs"):
            assert properties[field]["items"] == {"type": "string", "format": "binary"}
    for path in ("/api/v1/appeals/", "/api/v1/appeals/{public_id}/replies/"):
        assert list(schema["paths"][path]["post"]["requestBody"]["content"]) == [
            "multipart/form-data"
        ]


def test_post_only_actions_offer_no_get(schema, client, member_user):
    for path in ("/api/v1/appeals/{public_id}/replies/", "/api/v1/appeals/{public_id}/withdraw/"):
        assert set(schema["paths"][path]) - {"parameters"} == {"post"}
    client.force_login(member_user)
    response = client.get("/api/v1/appeals/6f1f1f1f-1f1f-4f1f-8f1f-1f1f1f1f1f1f/withdraw/")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


# Public by design: anyone may read the service status (it names no member).
PUBLIC_PATHS = {"/api/v1/status/"}


def test_every_operation_documents_its_errors_with_the_error_body(schema):
    for path, method, operation in _operations(schema):
        errors = {code: r for code, r in operation["responses"].items() if code.startswith("4")}
        # Who may call it (401 node token / 403 session) and throttling, always.
        assert {"429"} <= set(errors), (path, method)
        if path not in PUBLIC_PATHS:
            assert {"401", "403"} & set(errors), (path, method)
        if method == "post":
            assert {"400", "415"} <= set(errors), (path, method)
        if "{" in path:
            assert "404" in errors, (path, method)
        for code, response in errors.items():
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == ERROR_REF, (path, method, code)


def test_member_api_documents_the_session_cookie(schema):
    assert schema["components"]["securitySchemes"]["cookieAuth"]["in"] == "cookie"
    assert schema["paths"]["/api/v1/me/"]["get"]["security"] == [{"cookieAuth": []}]


def test_errors_have_one_shape_and_a_stable_code(client, member_user):
    anonymous = client.get("/api/v1/me/")
    assert anonymous.status_code == 403
    assert anonymous.json()["error"] == "not_authenticated"
    client.force_login(member_user)
    page = client.get("/api/v1/me/disconnects/?page=99")
    assert page.status_code == 404
    assert set(page.json()) == {"error", "detail"} and page.json()["error"] == "not_found"


def test_errors_speak_chinese_by_default_and_english_when_asked(db):
    chinese = Client().get("/api/v1/me/").json()
    english_client = Client()
    english_client.cookies["django_language"] = "en"
    english = english_client.get("/api/v1/me/").json()
    assert chinese["error"] == english["error"] == "not_authenticated"
    assert english["detail"] == "Authentication credentials were not provided."
    assert chinese["detail"] == "身份认证信息未提供。"


def test_an_api_address_no_route_matches_is_a_json_404(client, member_user):
    client.force_login(member_user)
    for url in (
        "/api/v1/appeals/null,null/withdraw/",
        "/api/v1/appeals/a%0Ab/withdraw/",  # a newline in the id
        "/api/v1/appeals/0/",
        "/api/v1/nope/",
    ):
        response = client.post(url) if "withdraw" in url else client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "not_found"
    # Without the slash, Django still redirects to the address with it.
    assert client.get("/api/v1/me").status_code == 301
