from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from .language import SUPPORTED, language_choice_remember, language_cookie_set
from .models import DataExport, ExportStatus, NotificationKind, User
from .selectors import member_profile_for_user
from .services.accounts import member_set_language
from .services.delivery import unsubscribe_read
from .services.exports import ExportError, download_allowed, download_token, export_request
from .services.preferences import inbox_mark_read, preferences_for, preferences_set
from .services.subscribers import (
    subscriber_confirm,
    subscriber_confirm_check,
    subscriber_from_unsubscribe_token,
    subscriber_unsubscribe,
)


def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the hashed static name exists only after collectstatic.
    return redirect(static("img/favicon.svg"), permanent=True)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "members/home.html")


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
    if language not in SUPPORTED:
        return response
    if request.user.is_authenticated:
        profile = member_profile_for_user(user=request.user)
        if profile is not None:
            member_set_language(profile=profile, language=language)
    else:
        language_choice_remember(request, language)  # kept by signing in next
    language_cookie_set(response, language)
    return response


@login_required
def inbox(request: HttpRequest) -> HttpResponse:

    rows = request.user.notifications.filter(in_inbox=True).order_by("-created_at", "-pk")
    page = Paginator(rows, 30).get_page(request.GET.get("page"))
    return render(request, "members/inbox.html", {"page": page})


@login_required
@require_POST
def inbox_read(request: HttpRequest, notification_id: int | None = None) -> HttpResponse:

    inbox_mark_read(user=request.user, notification_id=notification_id, now=timezone.now())
    target = request.POST.get("next") or reverse("members:inbox")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("members:inbox")
    return HttpResponseRedirect(target)


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:

    rows = preferences_for(user=request.user)
    if request.method == "POST":
        for row in rows:
            preferences_set(
                user=request.user,
                kind=row["kind"],
                email=f"email:{row['kind']}" in request.POST,
                inbox=f"inbox:{row['kind']}" in request.POST,
            )
        messages.success(request, _("Your reminder settings were saved."))
        return HttpResponseRedirect(reverse("members:notification-settings"))
    return render(request, "members/notification_settings.html", {"rows": rows})


@csrf_exempt
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """One-click unsubscribe (RFC 8058): the signed token is the authority,
    so it works from a mail client without a login; GET only asks."""

    found = unsubscribe_read(token)
    if found is None:
        return render(request, "members/unsubscribe.html", {"invalid": True}, status=404)
    user_id, kind = found
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return render(request, "members/unsubscribe.html", {"invalid": True}, status=404)

    label = NotificationKind(kind).label
    if request.method == "POST":
        preferences_set(user=user, kind=kind, email=False)
        return render(request, "members/unsubscribe.html", {"done": True, "label": label})
    return render(request, "members/unsubscribe.html", {"label": label, "token": token})


@login_required
def data_export(request: HttpRequest) -> HttpResponse:

    if request.method == "POST":
        try:
            export_request(user=request.user, now=timezone.now())
            messages.success(
                request, _("Your export is being prepared. We will tell you when it is ready.")
            )
        except ExportError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("members:export"))
    now = timezone.now()
    exports = [
        {
            "export": e,
            "token": download_token(e)
            if e.status == ExportStatus.READY and e.expires_at and e.expires_at > now
            else None,
        }
        for e in request.user.exports.all()[:10]
    ]
    return render(request, "members/export.html", {"exports": exports})


@login_required
def export_download(request: HttpRequest, public_id) -> HttpResponse:

    export = DataExport.objects.filter(public_id=public_id).first()
    if export is None or not download_allowed(
        export=export, user=request.user, token=request.GET.get("t", ""), now=timezone.now()
    ):
        raise Http404
    response = FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=f"kamen-export-{export.requested_at:%Y%m%d-%H%M}.zip",
        content_type="application/zip",
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def sign_in_history(request: HttpRequest) -> HttpResponse:
    return render(request, "members/sign_ins.html", {"events": request.user.sign_ins.all()[:50]})


@require_http_methods(["GET", "POST"])
def subscriber_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """The double opt-in link: GET asks (mail scanners that open links do
    not subscribe anybody), POST confirms."""
    if request.method == "POST":
        subscriber = subscriber_confirm(token=token, now=timezone.now())
        if subscriber is None:
            return render(request, "members/subscriber.html", {"invalid": True}, status=404)
        return render(request, "members/subscriber.html", {"confirmed": True})
    if subscriber_confirm_check(token) is None:
        return render(request, "members/subscriber.html", {"invalid": True}, status=404)
    return render(request, "members/subscriber.html", {"confirm": True})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def subscriber_unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """One-click unsubscribe (RFC 8058) for subscribers without an account:
    the signed token is the authority; GET only asks."""
    if request.method == "POST":
        subscriber = subscriber_unsubscribe(token=token, now=timezone.now())
        if subscriber is None:
            return render(request, "members/subscriber.html", {"invalid": True}, status=404)
        return render(request, "members/subscriber.html", {"unsubscribed": True})
    if subscriber_from_unsubscribe_token(token) is None:
        return render(request, "members/subscriber.html", {"invalid": True}, status=404)
    return render(request, "members/subscriber.html", {"unsubscribe": True})
