from django.http import HttpRequest


def axes_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The login name axes counts failures against.

    allauth passes ``email``, Django admin passes ``username`` (which holds the
    email, our USERNAME_FIELD); lower-cased so case variants share one counter.
    """
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if not value and request is not None:
        value = request.POST.get("login") or request.POST.get("username")
    return value.strip().lower() if value else None
