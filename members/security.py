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
