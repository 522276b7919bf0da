"""The reader's interface language: one home for the supported codes, the
switcher's cookie, and the choice made before signing in.

A choice counts at sign-in only when it was made in this visit (held in the
session, which Django keeps through login): the cookie alone may be left
over from another member on a shared browser, or from before this member
changed their language elsewhere, and must not overwrite their account.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse

SUPPORTED = frozenset(code for code, _name in settings.LANGUAGES)
_CHOSEN = "kamen_language_chosen"


def language_from_cookie(request: HttpRequest | None) -> str | None:
    """The switcher's cookie, when it names a language we have."""
    if request is None:
        return None
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    return cookie if cookie in SUPPORTED else None


def language_cookie_set(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=False,
    )


def language_choice_remember(request: HttpRequest, language: str) -> None:
    """The reader picked ``language`` on the page in this visit."""
    session = getattr(request, "session", None)
    if session is not None:
        session[_CHOSEN] = language


def language_choice_take(request: HttpRequest | None) -> str | None:
    """The language picked in this visit before signing in, once."""
    session = getattr(request, "session", None) if request is not None else None
    if session is None:
        return None
    chosen = session.pop(_CHOSEN, None)
    return chosen if chosen in SUPPORTED else None
