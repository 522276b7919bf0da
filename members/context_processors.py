from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def portal(request: HttpRequest) -> dict:
    return {
        "PORTAL_NAME": settings.PORTAL_NAME,
        "PORTAL_LANGUAGES": settings.LANGUAGES,
        "unread_count": _unread(request),
    }


def _unread(request: HttpRequest):
    """Lazily counted: only pages that show the navigation pay the query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0

    def count() -> int:
        return user.notifications.filter(in_inbox=True, read_at__isnull=True).count()

    return SimpleLazyObject(count)
