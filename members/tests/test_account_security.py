import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from members.tests.factories import PASSWORD, MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db


def _login(email, agent):
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post(reverse("account_login"), {"login": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_active_sessions_are_listed_and_others_can_be_signed_out():
    MemberFactory(email="multi@example.com")
    phone = _login("multi@example.com", "Phone browser")
    laptop = _login("multi@example.com", "Laptop browser")
    page = laptop.get(reverse("usersessions_list"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Phone browser" in body and "Laptop browser" in body
    laptop.post(reverse("usersessions_list"), {"action": "logout"})
    # The phone's session really ended; the laptop is still signed in.
    assert phone.get(reverse("dashboard")).status_code == 302
    assert laptop.get(reverse("dashboard")).status_code == 200
    assert Session.objects.count() == 1


def test_staff_without_mfa_are_sent_to_set_it_up_before_the_admin(client, settings):
    settings.ADMIN_REQUIRE_MFA = True
    staff = StaffFactory(is_superuser=True)
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_activate_totp"))
    TOTP.activate(staff, generate_totp_secret())
    # Enrolled, but this session has not passed the code yet.
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))


def test_members_are_not_affected_by_the_staff_mfa_rule(client, settings):
    settings.ADMIN_REQUIRE_MFA = True
    client.force_login(MemberFactory())
    assert client.get(reverse("dashboard")).status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_sign_in_history_lists_my_sign_ins_only():
    MemberFactory(email="hist@example.com")
    MemberFactory(email="other@example.com")
    _login("other@example.com", "Other browser")
    first = _login("hist@example.com", "Browser A")
    _login("hist@example.com", "Browser B")
    page = first.get(reverse("members:sign-ins"))
    body = page.content.decode()
    assert "Browser A" in body and "Browser B" in body and "Other browser" not in body
    events = list(page.context["events"])
    assert [e.new_device for e in events] == [True, False]  # B was new after A


def test_client_ip_ignores_forwarded_headers_without_trusted_proxies():
    MemberFactory(email="ip@example.com")
    client = Client(
        HTTP_USER_AGENT="UA", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="198.51.100.7"
    )
    client.post(reverse("account_login"), {"login": "ip@example.com", "password": PASSWORD})
    from members.models import SignInEvent

    assert SignInEvent.objects.get().ip == "198.51.100.7"


def test_behind_one_trusted_proxy_the_forwarded_client_ip_is_used(settings):
    settings.PROXY_COUNT = 1
    MemberFactory(email="proxy@example.com")
    # The client forged the left-most entry; nginx appended the real address.
    client = Client(
        HTTP_USER_AGENT="UA", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9", REMOTE_ADDR="10.0.0.2"
    )
    client.post(reverse("account_login"), {"login": "proxy@example.com", "password": PASSWORD})
    from members.models import SignInEvent

    assert SignInEvent.objects.get().ip == "203.0.113.9"
