import pytest
from django.test import override_settings
from django.urls import path, reverse

from members.models import MemberProfile

pytestmark = pytest.mark.django_db


def test_landing_page_is_chinese_by_default_whatever_the_browser_asks(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans">' in response.content.decode()


def test_language_switch_sets_english_and_remembers_it(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = client.get("/").content.decode()
    assert '<html lang="en">' in page
    assert "How it works" in page


def test_language_switch_is_saved_on_the_member_profile(member_client, member_user):
    member_client.post(reverse("set_language"), {"language": "en", "next": "/dashboard/"})
    assert MemberProfile.objects.get(user=member_user).language == "en"
    # The profile wins even without the cookie (e.g. on another device).
    member_client.cookies.clear()
    member_client.force_login(member_user)
    assert '<html lang="en">' in member_client.get("/dashboard/").content.decode()


def test_unknown_language_is_ignored(client):
    response = client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    assert response.status_code == 302
    assert '<html lang="zh-hans">' in client.get("/").content.decode()


def test_language_switch_does_not_redirect_off_site(client):
    response = client.post(
        reverse("set_language"), {"language": "en", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_language_switch_requires_post(client):
    assert client.get(reverse("set_language")).status_code == 405


def test_dashboard_requires_login(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_dashboard_shows_the_membership(member_client, member_user):
    profile = member_user.member
    response = member_client.get(reverse("dashboard"))
    page = response.content.decode()
    assert profile.member_no in page
    assert "黄金" in page  # gold tier, in Chinese
    assert (
        profile.expires_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime(
            "%Y-%m-%d %H:%M"
        )
        in page
    )
    assert response.context["remaining_days"] in (29, 30)


def test_dashboard_for_staff_explains_there_is_no_membership(client, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert response.context["profile"] is None


def test_unknown_url_gets_the_styled_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "site-header" in page
    assert "404" in page


def _boom(request):
    raise RuntimeError("boom")


urlpatterns = [path("boom/", _boom)]


@override_settings(ROOT_URLCONF=__name__)
def test_server_error_gets_the_styled_500(client):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "500" in page
    assert "portal.css" in page


def test_security_headers_are_set(client):
    response = client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


def test_api_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
