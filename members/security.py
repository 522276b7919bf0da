from django.conf import settings
from django.http import HttpRequest


def axes_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The login name axes counts failures against.

    allauth passes ``email``, Django admin passes ``username`` (which holds the
    email, our USERNAME_FIELD); lower-cased so case variants share one counter.
    """
    # Only the credentials, never request.POST: axes calls this from its
    # middleware on every request, and parsing the body there would read
    # (and spool) uploads before any view could refuse them. Lock-outs are
    # still enforced, by the backend, whenever credentials are checked.
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    return value.strip().lower() if value else None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. Each trusted proxy (PROXY_COUNT of them, nginx
    style) appends the address it received the request from to
    X-Forwarded-For, so the client is the PROXY_COUNT-th entry from the
    right; anything further left was written by the client and is ignored."""

    count = settings.PROXY_COUNT
    if count > 0:
        hops = [
            h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()
        ]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR") or None
