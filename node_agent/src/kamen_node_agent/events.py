"""Session events as the node writes them: one JSON object per line.

    {"member": "KM00001234", "session": "s-1", "at": "2026-11-26T10:00:00+08:00", "state": "alive"}

``state`` is ``alive`` (default) or ``ended`` (a normal logout); ``at`` is
the event time with a UTC offset, and defaults to the agent's clock when the
line has none (prefer sending it: the portal detects on event time).
"""

from __future__ import annotations

import json
from datetime import datetime

from .buffer import Event

STATES = ("alive", "ended")
MAX_FIELD = 128


class BadEvent(ValueError):
    pass


def parse_line(line: str | bytes, *, now: datetime) -> Event | None:
    """One event from one line; None for a blank line. Raises BadEvent."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadEvent("not UTF-8") from exc
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadEvent("not JSON") from exc
    if not isinstance(data, dict):
        raise BadEvent("not a JSON object")
    member, session = data.get("member"), data.get("session")
    for name, value in (("member", member), ("session", session)):
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
            raise BadEvent(f"{name} must be a non-empty string of at most {MAX_FIELD} characters")
    state = data.get("state", "alive")
    if state not in STATES:
        raise BadEvent("state must be alive or ended")
    raw_at = data.get("at")
    if raw_at is None:
        at = now
    else:
        if not isinstance(raw_at, str):
            raise BadEvent("at must be an ISO 8601 string")
        try:
            at = datetime.fromisoformat(raw_at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadEvent("at is not an ISO 8601 time") from exc
        if at.tzinfo is None or at.utcoffset() is None:
            raise BadEvent("at needs a UTC offset")
    return Event(member=member, session=session, at=at, state=state)
