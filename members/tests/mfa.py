"""Signing staff in with two-factor authentication in tests.

Every /admin/ page, the operators' dashboard and staff reads of /metrics are
behind the staff gate (kamen_portal.staff_gate): a staff user who has TOTP
must have passed it *in this session*, and with ADMIN_REQUIRE_MFA on, staff
without TOTP are sent to set it up. ``client.force_login(staff)`` alone is
therefore not enough for a TOTP-enrolled staff user. Use:

- ``staff_login(client, user)``: the fast way for tests that are about
  something else. Enrols TOTP if the user has none, then ``force_login`` and
  writes the session records allauth's own sign-in writes (a password step
  and an "mfa" step, through allauth's ``record_authentication``). Works with
  ADMIN_REQUIRE_MFA on or off.
- ``staff_login_through_allauth(client, user)``: the real door, for tests of
  the sign-in itself: POST email and password to the allauth login, then a
  real TOTP code to the two-factor step. Slower (password hashing), and a
  TOTP code is accepted once per 30-second step per user (allauth marks it
  used in the cache; the root conftest clears the cache between tests).
- ``totp_secret(user)`` / ``totp_code(secret)``: the user's TOTP secret
  (enrolling one if needed) and the code an authenticator app shows now.
- ``recovery_codes(user)``: the user's unused recovery codes (generated if
  needed).
- ``mfa_session_records(user)``: the session keys and values the allauth
  sign-in leaves, for code that builds a session by hand (benchmarks/).
"""

from __future__ import annotations

import time

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt
from django.test import RequestFactory
from django.urls import reverse

from members.tests.factories import PASSWORD


def totp_secret(user) -> str:
    """The user's TOTP secret; enrols TOTP (as the setup page would) if none."""
    auth = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if auth is not None:
        return decrypt(auth.data["secret"])
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now. Avoids the last second of a
    30-second step, so the code is still current when the server checks it."""
    period = mfa_settings.TOTP_PERIOD
    if period - time.time() % period < 1.0:
        time.sleep(period - time.time() % period + 0.05)
    return format_hotp_value(hotp_value(secret, int(time.time()) // period))


def recovery_codes(user) -> list[str]:
    """The user's unused recovery codes (TOTP is enrolled first if needed,
    since allauth keeps recovery codes only beside another factor)."""
    totp_secret(user)
    return RecoveryCodes.activate(user).get_unused_codes()


def mfa_session_records(user) -> dict:
    """The session entries allauth's sign-in writes for password + TOTP,
    produced by allauth's own ``record_authentication``."""
    totp_secret(user)
    auth = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    request = RequestFactory().get("/")
    request.session = {}
    record_authentication(request, user, "password", email=user.email)
    record_authentication(request, user, "mfa", id=auth.pk, type=auth.type)
    return dict(request.session)


def staff_login(client, user) -> None:
    """Sign ``user`` in as if through the allauth sign-in with its TOTP step
    (fast: no password hashing, no code)."""
    records = mfa_session_records(user)
    client.force_login(user)
    session = client.session
    session.update(records)
    session.save()


def staff_login_through_allauth(client, user, *, password: str = PASSWORD, next_url="/admin/"):
    """Sign in through the real door: password, then a TOTP code. Returns the
    response of the code step (a redirect to ``next_url``)."""
    secret = totp_secret(user)
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": password, "next": next_url}
    )
    assert response.status_code == 302, response.status_code
    assert response["Location"] == reverse("mfa_authenticate"), response["Location"]
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302, response.status_code
    return response
