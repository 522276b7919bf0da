from django.http import HttpRequest


def declared_body_size(request: HttpRequest) -> int:
    """The Content-Length the client declared (0 when absent or garbled), so
    oversized uploads can be refused before Django reads the body."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0
