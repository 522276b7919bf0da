"""Staff sign in through one door (allauth) with two factors, and only a
session that passed the second factor opens the admin, the operators'
dashboard or /metrics."""

from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from axes.models import AccessAttempt
from django.core.cache import cache
from django.urls import reverse

from members.tests.factories import PASSWORD, MemberFactory, StaffFactory
from members.tests.mfa import (
    recovery_codes,
    staff_login,
    staff_login_through_allauth,
    totp_code,
    totp_secret,
)

pytestmark = pytest.mark.django_db

ADMIN_PAGES = ["/admin/", "/admin/dashboard/", "/admin/appeals/appeal/"]


def _signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def _next_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["next"][0]


@pytest.fixture
def totp_staff(db):
    user = StaffFactory(email="boss@example.com", is_superuser=True)
    return user, totp_secret(user)


def _password_step(client, email, next_url="/admin/"):
    response = client.post(
        reverse("account_login"), {"login": email, "password": PASSWORD, "next": next_url}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    return response


# --- The one door ------------------------------------------------------------


def test_a_password_posted_to_the_admin_login_signs_nobody_in(client, totp_staff):
    user, _secret = totp_staff
    response = client.post(
        reverse("admin:login"), {"username": user.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert _signed_in_user_id(client) is None
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_staff_without_totp_cannot_sign_in_at_the_admin_login_either(client):
    user = StaffFactory(email="plain@example.com")
    client.post(reverse("admin:login"), {"username": user.email, "password": PASSWORD})
    assert _signed_in_user_id(client) is None


def test_the_admin_login_leads_to_the_allauth_sign_in_keeping_next(client):
    response = client.get(reverse("admin:login"), {"next": "/admin/appeals/appeal/"})
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == reverse("account_login")
    assert _next_of(response["Location"]) == "/admin/appeals/appeal/"
    # An anonymous visit to an admin page goes the same way, step by step.
    response = client.get("/admin/appeals/appeal/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))


def test_a_signed_in_staff_user_posting_other_credentials_stays_who_they_are(client, totp_staff):
    user, _secret = totp_staff
    other = StaffFactory(email="other-staff@example.com", is_superuser=True)
    staff_login(client, user)
    response = client.post(reverse("admin:login"), {"username": other.email, "password": PASSWORD})
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(user.pk)


def test_the_admin_login_never_sends_staff_off_site(client, totp_staff):
    user, _secret = totp_staff
    staff_login(client, user)
    response = client.get(reverse("admin:login"), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    response = client.get(reverse("admin:login"), {"next": "/admin/appeals/appeal/"})
    assert response["Location"] == "/admin/appeals/appeal/"


def test_a_signed_in_member_is_refused_at_the_admin_login(client):
    client.force_login(MemberFactory())
    assert client.get(reverse("admin:login")).status_code == 403


# --- Password alone does not open staff surfaces ------------------------------


def test_the_password_step_alone_does_not_sign_in(client, totp_staff):
    user, _secret = totp_staff
    _password_step(client, user.email)
    assert _signed_in_user_id(client) is None
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("require_mfa", [True, False])
def test_a_password_only_session_of_totp_staff_cannot_open_admin_pages_or_metrics(
    client, settings, require_mfa
):
    settings.ADMIN_REQUIRE_MFA = require_mfa
    user = StaffFactory(email="late@example.com", is_superuser=True)
    # Signed in by password before TOTP was enrolled: no two-factor record.
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302 and _signed_in_user_id(client) == str(user.pk)
    TOTP.activate(user, generate_totp_secret())
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert urlsplit(response["Location"]).path == reverse("mfa_reauthenticate"), path
        assert _next_of(response["Location"]) == path
    assert client.get("/metrics").status_code == 403


def test_force_login_without_the_totp_step_does_not_open_the_admin(client, totp_staff):
    user, _secret = totp_staff
    client.force_login(user)
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == reverse("mfa_reauthenticate")
    assert client.get("/metrics").status_code == 403


def test_the_totp_step_on_the_reauthenticate_page_opens_the_admin(client, totp_staff):
    user, secret = totp_staff
    client.force_login(user)
    gate = client.get("/admin/dashboard/")
    response = client.get(gate["Location"])
    assert response.status_code == 200
    # Only a second factor opens the admin: no "use your password" option here.
    assert reverse("account_reauthenticate") not in response.content.decode()
    response = client.post(gate["Location"], {"code": totp_code(secret)})
    assert response.status_code == 302 and response["Location"] == "/admin/dashboard/"
    assert client.get("/admin/dashboard/").status_code == 200
    assert client.get("/admin/").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_a_wrong_code_on_the_reauthenticate_page_keeps_the_admin_closed(client, totp_staff):
    user, _secret = totp_staff
    client.force_login(user)
    response = client.post(reverse("mfa_reauthenticate"), {"code": "000000", "next": "/admin/"})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert client.get("/admin/").status_code == 302


def test_the_metrics_token_still_works_without_a_session(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200


# --- The full sign-in ---------------------------------------------------------


def test_after_password_and_totp_the_admin_opens(client, totp_staff, settings):
    settings.ADMIN_REQUIRE_MFA = True
    user, _secret = totp_staff
    response = client.get("/admin/appeals/appeal/", follow=True)
    login_url = response.redirect_chain[-1][0]
    next_url = _next_of(login_url)
    assert next_url == "/admin/appeals/appeal/"
    response = staff_login_through_allauth(client, user, next_url=next_url)
    assert response["Location"] == "/admin/appeals/appeal/"
    assert _signed_in_user_id(client) == str(user.pk)
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 200, path
    assert client.get("/metrics").status_code == 200


def test_a_recovery_code_works_for_the_admin_sign_in_once(client, totp_staff):
    user, _secret = totp_staff
    code = recovery_codes(user)[0]
    _password_step(client, user.email)
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert code not in recovery_codes(user)
    # Used up: the same code does not sign in again.
    client.logout()
    _password_step(client, user.email)
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 200
    assert _signed_in_user_id(client) is None


def test_a_recovery_code_also_passes_the_reauthenticate_page(client, totp_staff):
    user, _secret = totp_staff
    client.force_login(user)
    code = recovery_codes(user)[0]
    response = client.post(reverse("mfa_reauthenticate"), {"code": code, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


# --- Lock-out ------------------------------------------------------------------


def test_five_wrong_codes_lock_the_account_out_and_then_a_right_code_is_refused(
    client, totp_staff, settings
):
    assert settings.AXES_FAILURE_LIMIT == 5
    user, secret = totp_staff
    _password_step(client, user.email)
    for attempt in range(1, 5):
        response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert response.status_code == 200, attempt
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 429  # axes' lock-out page
    assert AccessAttempt.objects.get(username=user.email).failures_since_start == 5
    # allauth's own rate limit lives in the cache; clearing it shows that the
    # refusal below is axes' lock-out (kept in the database for 15 minutes).
    cache.clear()
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 429
    assert _signed_in_user_id(client) is None
    # The password step is refused too while the lock lasts.
    client.logout()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_the_lock_out_ends_after_the_cool_off(client, totp_staff):
    import time_machine
    from django.utils import timezone

    user, secret = totp_staff
    _password_step(client, user.email)
    for _ in range(5):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})
    cache.clear()
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=16), tick=False):
        client.logout()
        _password_step(client, user.email)
        response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(user.pk)


def test_wrong_codes_on_the_reauthenticate_page_count_towards_the_lock_out(client, totp_staff):
    user, secret = totp_staff
    client.force_login(user)
    for _ in range(5):
        response = client.post(reverse("mfa_reauthenticate"), {"code": "000000"})
    assert response.status_code == 429
    cache.clear()
    response = client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret)})
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_a_good_code_after_a_few_wrong_ones_signs_in_and_resets_the_count(client, totp_staff):
    user, secret = totp_staff
    _password_step(client, user.email)
    for _ in range(3):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username=user.email).exists()


# --- Staff without TOTP, members ----------------------------------------------


def test_staff_without_totp_are_sent_to_set_it_up_when_required(client, settings):
    settings.ADMIN_REQUIRE_MFA = True
    user = StaffFactory(is_superuser=True)
    client.force_login(user)
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert urlsplit(response["Location"]).path == reverse("mfa_activate_totp"), path
        assert _next_of(response["Location"]) == path
    assert client.get("/metrics").status_code == 403


def test_staff_without_totp_open_the_admin_when_not_required(client, settings):
    settings.ADMIN_REQUIRE_MFA = False
    client.force_login(StaffFactory(is_superuser=True))
    assert client.get("/admin/").status_code == 200


def test_members_are_unaffected(client, settings):
    settings.ADMIN_REQUIRE_MFA = True
    member = MemberFactory(email="m@example.com")
    secret = totp_secret(member)
    # A member with TOTP signs in to the member area as before.
    _password_step(client, member.email, next_url=reverse("dashboard"))
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert client.get("/metrics").status_code == 403


# --- The test helper other tests rely on -------------------------------------


def test_staff_login_helper_opens_the_admin_with_mfa_required(client, settings):
    settings.ADMIN_REQUIRE_MFA = True
    user = StaffFactory(is_superuser=True)
    staff_login(client, user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/dashboard/").status_code == 200
