"""Reads shared by the feed API and the admin."""

from __future__ import annotations

from .models import Event

FEED_MAX_LIMIT = 500


def events_after(*, after: int, limit: int, types: list[str] | None = None) -> list[Event]:
    """Events with a sequence above ``after``, oldest first."""
    qs = Event.objects.filter(id__gt=after).order_by("id")
    if types:
        qs = qs.filter(type__in=types)
    return list(qs[:limit])
