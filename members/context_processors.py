from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    return {"PORTAL_NAME": settings.PORTAL_NAME, "PORTAL_LANGUAGES": settings.LANGUAGES}
