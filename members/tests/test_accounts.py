"""Sign-up, verification, login and MFA: the happy path and the bad input."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from members.models import User
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

STRONG = "Lantern-harbour-2718"


def _signup(client, email="new.member@example.com", password=STRONG, password2=None):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": password, "password2": password2 or password},
    )


def _confirmation_link(message) -> str:
    match = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/", message.body)
    assert match, message.body
    # Absolute under PORTAL_BASE_URL; the test client wants the path.
    return urlsplit(match.group(0)).path


def test_signup_sends_verification_and_refuses_login_until_verified(client):
    response = _signup(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert len(mail.outbox) == 1
    user = User.objects.get(email="new.member@example.com")
    assert not EmailAddress.objects.get(user=user).verified

    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "new.member@example.com", "password": STRONG}
    )
    # Mandatory verification: no session, sent back to "verify your email".
    assert "_auth_user_id" not in client.session
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")


def test_verification_link_verifies_and_member_can_log_in(client):
    _signup(client)
    link = _confirmation_link(mail.outbox[0])
    client.logout()
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response.status_code == 302
    assert EmailAddress.objects.get(email="new.member@example.com").verified

    response = client.post(
        reverse("account_login"),
        {"login": "new.member@example.com", "password": STRONG},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert response.context["profile"].member_no.startswith("KM")


def test_verification_email_is_in_chinese_by_default(client):
    _signup(client)
    message = mail.outbox[0]
    assert re.search(r"[\u4e00-\u9fff]", message.subject + message.body)


def test_expired_verification_link_is_refused_with_a_clear_message(client):
    _signup(client)
    link = _confirmation_link(mail.outbox[0])
    client.logout()
    with time_machine.travel(timezone.now() + timedelta(days=4), tick=False):
        response = client.get(link)
        assert response.status_code in (200, 404)
        page = response.content.decode()
        assert "过期" in page or "无效" in page
        client.post(link)
    assert not EmailAddress.objects.get(email="new.member@example.com").verified


def test_reused_verification_link_does_not_fail(client):
    _signup(client)
    link = _confirmation_link(mail.outbox[0])
    client.logout()
    client.post(link)
    response = client.get(link)
    assert response.status_code in (200, 404)
    response = client.post(link)
    assert response.status_code in (200, 302, 404)
    assert EmailAddress.objects.get(email="new.member@example.com").verified


def test_taken_email_gets_a_clear_message_in_chinese(client):
    MemberFactory(email="taken@example.com")
    response = _signup(client, email="taken@example.com")
    # allauth prevents account enumeration: the form "succeeds" and the owner
    # of the address is told by email; no second account appears.
    assert response.status_code == 302
    assert User.objects.filter(email="taken@example.com").count() == 1
    assert any("taken@example.com" in m.to for m in mail.outbox)


def test_weak_password_is_refused_with_reasons_in_chinese(client):
    response = _signup(client, password="12345678")
    assert response.status_code == 200
    page = response.content.decode()
    assert "密码" in page
    assert not User.objects.filter(email="new.member@example.com").exists()


def test_mismatched_passwords_are_refused(client):
    response = _signup(client, password2="Something-else-9876")
    assert response.status_code == 200
    assert not User.objects.filter(email="new.member@example.com").exists()


def test_wrong_password_says_so_and_logs_nobody_in(client):
    MemberFactory(email="m@example.com")
    response = client.post(
        reverse("account_login"), {"login": "m@example.com", "password": "nope-nope"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "不正确" in response.content.decode()


def test_repeated_wrong_passwords_lock_the_account_out(client):
    MemberFactory(email="victim@example.com")
    url = reverse("account_login")
    for _ in range(4):
        client.post(url, {"login": "victim@example.com", "password": "bad-guess-1"})
    fifth = client.post(url, {"login": "victim@example.com", "password": "bad-guess-1"})
    assert fifth.status_code == 429
    assert "尝试" in fifth.content.decode()
    # Even the right password does not get in while the lock lasts.
    response = client.post(url, {"login": "victim@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)
    assert "过多" in response.content.decode() or "尝试" in response.content.decode()


def test_admin_sign_in_is_brute_force_protected_too(client):
    from members.tests.factories import StaffFactory

    StaffFactory(email="staff@example.com")
    # The admin's own form checks no password: guesses there count for nothing
    # and sign nobody in; the one door (allauth) is locked out after five.
    client.post(reverse("admin:login"), {"username": "staff@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    url = f"{reverse('account_login')}?next=/admin/"
    for _ in range(5):
        client.post(url, {"login": "staff@example.com", "password": "bad-guess-1"})
    response = client.post(url, {"login": "staff@example.com", "password": PASSWORD})
    # axes' lock-out page, or allauth's own limit on the form: either way, out.
    assert response.status_code in (200, 429)
    assert "过多" in response.content.decode() or "尝试" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_staff_can_log_into_admin(client):
    from members.tests.factories import StaffFactory
    from members.tests.mfa import staff_login_through_allauth

    staff = StaffFactory(email="staff@example.com")
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    response = staff_login_through_allauth(client, staff, next_url=reverse("admin:index"))
    assert response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


def test_member_cannot_enter_admin(member_client):
    response = member_client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_totp_login_requires_the_right_code(client):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret, hotp_value

    user = MemberFactory(email="mfa@example.com")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    response = client.post(
        reverse("account_login"), {"login": "mfa@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "代码" in response.content.decode() or "验证码" in response.content.decode()

    import time

    code = f"{hotp_value(secret, int(time.time()) // 30):06d}"
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_password_reset_sends_a_link(client):
    MemberFactory(email="forgot@example.com")
    response = client.post(reverse("account_reset_password"), {"email": "forgot@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_email_change_sends_verification_to_the_new_address(member_client):
    response = member_client.post(
        reverse("account_email"), {"action_add": "", "email": "new.address@example.com"}
    )
    assert response.status_code == 302
    assert EmailAddress.objects.filter(email="new.address@example.com", verified=False).exists()
    assert any("new.address@example.com" in m.to for m in mail.outbox)


def test_mfa_pages_render_in_the_portal_look(member_client):
    response = member_client.get(reverse("mfa_index"))
    assert response.status_code == 200
    assert "site-header" in response.content.decode()
