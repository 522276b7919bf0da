"""Staff open the admin in a real browser through one door: the allauth
sign-in, password and then a code from their authenticator app."""

import re

import pytest

from members.tests.factories import PASSWORD, StaffFactory
from members.tests.mfa import totp_code, totp_secret

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _admin_status(page, base: str) -> int:
    """What the admin answers this browser's cookies, without following."""
    response = page.context.request.get(f"{base}/admin/", max_redirects=0)
    return response.status


def test_staff_with_totp_sign_in_with_password_and_code_to_open_the_admin(page, live_server, shots):
    base = live_server.url
    staff = StaffFactory(email="boss@example.com", is_superuser=True)
    secret = totp_secret(staff)

    page.goto(f"{base}/admin/")
    # The admin's own login form is gone: the allauth sign-in, keeping next.
    page.wait_for_url(re.compile(r"/accounts/login/\?next=%2Fadmin%2F"))
    assert page.locator("input[name=username]").count() == 0
    shots(page, "60-admin-door-sign-in")
    page.fill("input[name=login]", staff.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url(re.compile(r"/accounts/2fa/authenticate/"))
    assert page.locator("input[name=code]").is_visible()
    shots(page, "61-admin-door-code-asked")
    # Password alone: not in the admin.
    assert _admin_status(page, base) == 302

    page.fill("input[name=code]", "000000")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    assert "/accounts/2fa/authenticate/" in page.url
    assert page.locator(".errorlist, .field-error, [role=alert]").count() >= 1
    shots(page, "62-admin-door-wrong-code")
    assert _admin_status(page, base) == 302

    page.fill("input[name=code]", totp_code(secret))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/admin/$"))
    assert page.locator("#site-name").is_visible()
    assert "boss@example.com" in page.locator("#user-tools").inner_text().lower()
    shots(page, "63-admin-door-in-the-admin")
    assert _admin_status(page, base) == 200
    assert page.console_errors == []


def test_a_password_only_session_is_asked_for_the_code_before_the_admin(page, live_server, shots):
    base = live_server.url
    staff = StaffFactory(email="late@example.com", is_superuser=True)
    # Signed in as a member would, before two-factor was enrolled.
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", staff.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    secret = totp_secret(staff)

    page.goto(f"{base}/admin/dashboard/")
    page.wait_for_url(re.compile(r"/accounts/2fa/reauthenticate/\?next=%2Fadmin%2Fdashboard%2F"))
    shots(page, "64-admin-door-reauthenticate")
    assert page.locator("a[href^='/accounts/reauthenticate/']").count() == 0
    page.fill("input[name=code]", totp_code(secret))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/admin/dashboard/$"))
    assert page.locator(".kamen-ops").count() == 1
    shots(page, "65-admin-door-dashboard")
    assert page.console_errors == []
