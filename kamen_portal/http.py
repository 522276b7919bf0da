from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest


def portal_url(path: str) -> str:
    """The absolute address of ``path`` (a path on this site, or an absolute
    URL whose path is kept) under PORTAL_BASE_URL: the one source for links
    that leave the browser (e-mails, the feed, receipts, the bundle), so a
    proxy's or a test server's Host header never leaks into them."""
    parts = urlsplit(path)
    rest = parts.path or "/"
    if parts.query:
        rest += "?" + parts.query
    if parts.fragment:
        rest += "#" + parts.fragment
    return settings.PORTAL_BASE_URL.rstrip("/") + rest


def declared_body_size(request: HttpRequest) -> int:
    """The Content-Length the client declared (0 when absent or garbled), so
    oversized uploads can be refused before Django reads the body."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0
