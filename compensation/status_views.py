"""The public status page, incident pages, the Atom feed and the member's
subscription to status notices. Thin: reads from ``status``, writes through
the members' preference service."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed, rfc3339_date
from django.utils.html import escape
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from kamen_portal.http import portal_url
from members.models import NotificationKind
from members.security import client_ip
from members.selectors import notification_channels
from members.services.preferences import preferences_set
from members.services.subscribers import SubscriptionError, subscriber_request

from .status import (
    LEGEND,
    feed_incidents,
    incident_changed_at,
    incident_label,
    past_incidents,
    past_maintenance,
    public_incident,
    status_overview,
)

PAST_PER_PAGE = 10


def _subscribed(request: HttpRequest) -> bool | None:
    """None for anonymous visitors (they get the feed and a sign-in link)."""
    if not request.user.is_authenticated:
        return None
    email, inbox = notification_channels(user=request.user, kind=NotificationKind.STATUS_NOTICE)
    return email or inbox


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    return _render_status(request)


def _render_status(request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
    overview = status_overview(now=timezone.now())
    past = Paginator(past_incidents(), PAST_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "compensation/status.html",
        {
            "overview": overview,
            "past": past,
            "past_maintenance": list(past_maintenance()[:PAST_PER_PAGE]),
            "subscribed": _subscribed(request),
            "legend": LEGEND,
            **extra,
        },
        status=status,
    )


@require_GET
def incident_page(request: HttpRequest, public_id) -> HttpResponse:
    incident = public_incident(public_id=public_id)
    if incident is None:
        raise Http404
    return render(
        request,
        "compensation/incident.html",
        {
            "incident": incident,
            "updates": list(incident.updates.all()),
            "now": timezone.now(),
            "changed_at": incident_changed_at(incident),
        },
    )


@require_POST
def status_subscribe(request: HttpRequest) -> HttpResponse:
    """Opt in (or out) of status notices. A member sets the same preference
    as on the notification settings page; anybody else gives an address,
    which gets a confirmation link (double opt-in)."""
    if not request.user.is_authenticated:
        return _subscribe_by_email(request)
    on = request.POST.get("subscribe") == "1"
    preferences_set(user=request.user, kind=NotificationKind.STATUS_NOTICE, email=on, inbox=on)
    if on:
        messages.success(request, _("You will be notified by email of incidents and maintenance."))
    else:
        messages.success(request, _("You will no longer be notified of incidents and maintenance."))
    return redirect("compensation:status")


def _subscribe_by_email(request: HttpRequest) -> HttpResponse:
    email = request.POST.get("email", "")
    try:
        subscriber_request(
            email=email,
            kind=NotificationKind.STATUS_NOTICE,
            language=get_language() or settings.LANGUAGE_CODE,
            client_ip=client_ip(request) or "",
            now=timezone.now(),
        )
    except SubscriptionError as exc:
        response = _render_status(
            request, status=exc.status, subscribe_error=exc.message, subscribe_email=email[:254]
        )
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
    # The same answer whether the address was new, pending or subscribed.
    messages.success(
        request,
        _("Check your inbox: follow the link in the email we sent to confirm the subscription."),
    )
    return redirect(f"{reverse('compensation:status')}#h-subscribe")


# Characters XML 1.0 cannot carry (Django's XML writer raises on them, which
# would make the whole feed a 500 because of one pasted control character).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _plain(text: str) -> str:
    return _NOT_XML.sub("", text)


def _html_paragraphs(blocks: list[str]) -> str:
    """Staff-written text as an HTML fragment that shows it verbatim: every
    block escaped, one paragraph each, its line breaks kept."""
    return "".join(
        "<p>" + escape(_plain(b)).replace("\r\n", "\n").replace("\n", "<br>") + "</p>"
        for b in blocks
    )


class StatusAtomFeed(Atom1Feed):
    """Atom whose entry titles and summaries are ``type="html"`` fragments
    escaped for HTML before the XML writer escapes them again, so a reader
    decoding the XML gets HTML in which staff-written text is only text
    (``&lt;script&gt;``, never ``<script>``). Chosen over ``type="text"``
    because it stays safe in readers that ignore the type and render every
    text construct as HTML. Emits only what StatusFeed gives (no author,
    enclosures or rights)."""

    def add_item_elements(self, handler, item):
        handler.addQuickElement("title", escape(item["title"]), {"type": "html"})
        handler.addQuickElement("link", "", {"href": item["link"], "rel": "alternate"})
        if item["pubdate"] is not None:
            handler.addQuickElement("published", rfc3339_date(item["pubdate"]))
        if item["updateddate"] is not None:
            handler.addQuickElement("updated", rfc3339_date(item["updateddate"]))
        handler.addQuickElement("id", item["unique_id"])
        if item["description"] is not None:
            handler.addQuickElement("summary", item["description"], {"type": "html"})
        for category in item["categories"]:
            handler.addQuickElement("category", "", {"term": category})


class StatusFeed(Feed):
    """Atom feed of incidents and maintenance, newest first; each entry
    carries its updates, oldest first, like the incident page."""

    feed_type = StatusAtomFeed
    title = gettext_lazy("Kamen service status")
    subtitle = gettext_lazy("Incidents and scheduled maintenance of the Kamen service nodes.")

    # Absolute under PORTAL_BASE_URL (the Site object's domain would say
    # whatever port the seed wrote): the feed's <link>s and <id>.
    def link(self):
        return portal_url(reverse("compensation:status"))

    def feed_url(self):
        return portal_url(reverse("compensation:status-feed"))

    def items(self):
        return feed_incidents()

    def item_title(self, item):
        """Plain text (the feed type escapes it for its ``type="html"``)."""
        return _plain(f"[{incident_label(item)}] {item.title}")

    def item_link(self, item):
        return portal_url(reverse("compensation:incident", kwargs={"public_id": item.public_id}))

    def item_guid(self, item):
        return f"urn:uuid:{item.public_id}"

    item_guid_is_permalink = False

    def item_description(self, item):
        """An HTML fragment: the description, then one paragraph per update."""
        blocks = [item.description] if item.description else []
        for update in item.updates.all():
            blocks.append(
                f"{timezone.localtime(update.posted_at):%Y-%m-%d %H:%M} "
                f"{update.get_status_display()}: {update.message}"
            )
        if not blocks:
            blocks.append(item.get_status_display())
        return _html_paragraphs(blocks)

    def item_pubdate(self, item):
        return item.created_at

    def item_updateddate(self, item):
        return incident_changed_at(item)

    def item_categories(self, item):
        return [incident_label(item)]


status_feed = StatusFeed()
