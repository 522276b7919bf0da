import zoneinfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

from kamen_portal.staff_gate import staff_gate_response

from .language import SUPPORTED, language_from_cookie


def _profile(request: HttpRequest):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return getattr(user, "member", None)


class MemberLocaleMiddleware:
    """Chinese first: the language is the member's saved choice, else the
    language cookie set by the switcher, else zh-hans.

    The browser's Accept-Language is deliberately ignored: the portal's
    audience reads Chinese first, and an English browser in an internet café
    should not surprise a member; English is one click away.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = settings.LANGUAGE_CODE
        cookie = language_from_cookie(request)
        if cookie:
            language = cookie
        profile = _profile(request)
        if profile is not None and profile.language in SUPPORTED:
            language = profile.language
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class MemberTimezoneMiddleware:
    """Show times in the member's time zone (default Asia/Shanghai)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        profile = _profile(request)
        if profile is not None:
            try:
                timezone.activate(zoneinfo.ZoneInfo(profile.timezone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class StaffMfaMiddleware:
    """Every /admin/ page (the operators' dashboard included) is behind the
    staff gate: staff with two-factor authentication must have passed it in
    this session, staff without it are sent to set it up when
    ADMIN_REQUIRE_MFA is on (kamen_portal.staff_gate holds the rule)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/") and request.path != reverse("admin:logout"):
            response = staff_gate_response(request)
            if response is not None:
                return response
        return self.get_response(request)
