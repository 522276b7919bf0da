from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .selectors import member_profile_for_user
from .services import member_set_language

_SUPPORTED = {code for code, _name in settings.LANGUAGES}


def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the hashed static name exists only after collectstatic.
    return redirect(static("img/favicon.svg"), permanent=True)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "members/home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    profile = member_profile_for_user(user=request.user)
    context = {"profile": profile, "now": now}
    if profile is not None:
        from compensation.selectors import member_disconnects, member_ledger

        remaining = profile.remaining(now=now)
        context.update(
            recent_disconnects=list(member_disconnects(member=profile)[:5]),
            recent_entries=list(member_ledger(member=profile)[:5]),
            membership_active=profile.membership_is_active(now=now),
            remaining_days=remaining.days,
            remaining_hours=remaining.seconds // 3600,
        )
    return render(request, "members/dashboard.html", context)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language; remembered in a cookie and, for a
    signed-in member, on the profile so emails follow the same choice."""
    language = request.POST.get("language", "")
    next_url = request.POST.get("next") or reverse("home")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("home")
    response = HttpResponseRedirect(next_url)
    if language not in _SUPPORTED:
        return response
    if request.user.is_authenticated:
        profile = member_profile_for_user(user=request.user)
        if profile is not None:
            member_set_language(profile=profile, language=language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=False,
    )
    return response
