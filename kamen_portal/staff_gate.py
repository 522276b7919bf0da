"""The staff gate: one rule for whether this session may use a staff surface
(every /admin/ page, the operators' dashboard, staff-session reads of
/metrics), and the admin's one door in.

A staff user who has a second factor must have passed it *in this session*:
allauth records each authentication step in the session, and the "mfa" record
is written only by its two-factor login step and its two-factor
reauthentication page. Having an authenticator is not enough: a session
signed in by password alone (or created before the authenticator was
enrolled) has no such record. Staff without a second factor are sent to set
one up when ADMIN_REQUIRE_MFA is on.

Layer 0: this module knows allauth and the session, nothing of the apps
above it, so both the admin middleware (members) and /metrics can use it.
"""

from __future__ import annotations

from enum import StrEnum

from allauth.account.authentication import get_authentication_records
from allauth.account.utils import get_next_redirect_url
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache


class StaffAccess(StrEnum):
    NOT_STAFF = "not_staff"  # anonymous or a member: the admin's own checks apply
    ALLOWED = "allowed"
    NEEDS_MFA_STEP = "needs_mfa_step"  # has a second factor, has not passed it here
    NEEDS_MFA_SETUP = "needs_mfa_setup"  # ADMIN_REQUIRE_MFA and no second factor


def passed_mfa(request: HttpRequest) -> bool:
    """Whether this session passed a second factor (TOTP or a recovery code)
    for its signed-in user. allauth ties the records to that user, and a
    sign-in as somebody else flushes the session."""
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


def staff_access(request: HttpRequest) -> StaffAccess:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return StaffAccess.NOT_STAFF
    # The session is read first: a staff session that passed the second factor
    # costs no query on every admin page. (Removing the authenticator later
    # needs a fresh reauthentication in allauth and does not undo the pass.)
    if passed_mfa(request):
        return StaffAccess.ALLOWED
    if is_mfa_enabled(user):
        return StaffAccess.NEEDS_MFA_STEP
    if settings.ADMIN_REQUIRE_MFA:
        return StaffAccess.NEEDS_MFA_SETUP
    return StaffAccess.ALLOWED


def staff_session_allowed(request: HttpRequest) -> bool:
    """A signed-in staff session that may read staff-only data."""
    return staff_access(request) == StaffAccess.ALLOWED


def staff_gate_response(request: HttpRequest) -> HttpResponse | None:
    """None when the request may go on; else where a browser must go first.

    Members and anonymous visitors pass: the admin sends them to its login,
    which leads to the allauth sign-in (see ``admin_login_done``)."""
    access = staff_access(request)
    if access == StaffAccess.NEEDS_MFA_STEP:
        messages.info(request, _("Enter a code from your authenticator app to open the admin."))
        return _redirect("mfa_reauthenticate", request.get_full_path())
    if access == StaffAccess.NEEDS_MFA_SETUP:
        messages.warning(
            request, _("Staff must set up two-factor authentication before using the admin.")
        )
        return _redirect("mfa_activate_totp", request.get_full_path())
    return None


def _redirect(urlname: str, next_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(urlname)}?{urlencode({'next': next_url})}")


@never_cache
def admin_login_done(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """Stands in for the admin's own login view, behind allauth's
    ``secure_admin_login`` (kamen_portal/urls.py), which sends anonymous
    visitors to the allauth sign-in with its two-factor step and refuses
    signed-in non-staff. What reaches this view is a signed-in staff user:
    it goes on to ``next`` (the staff gate then asks for the second factor if
    this session has not passed it). It never reads a password, so a POST
    of credentials to /admin/login/ signs nobody in."""
    return HttpResponseRedirect(get_next_redirect_url(request) or reverse("admin:index"))
