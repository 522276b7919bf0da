"""Entitlements for nodes: is a member entitled to connect now, and until
when. Answered from the cache on a node's connect path.

The answer is derived from the member's status and expiry only; "entitled"
is computed at the moment of asking (an expiry passing needs no
invalidation). Cached values are deleted after every commit that moved a
member's time (each ledger entry) or changed their status (receivers.py).

Invalidation leaves a short-lived tombstone instead of only deleting: a
reader that read the database just before the writer committed would
otherwise put the old answer back right after the delete. Readers only
``add`` (set if absent), so a tombstone wins, and while it lives readers go
to the database. Without Redis (the embedded default) there is no shared
cache between web and worker processes to invalidate, so every look-up reads
the database: one indexed query per request, batch or not.

A node learns entitlements only of its own members: those it reported a
heartbeat for within ENTITLEMENT_SCOPE_DAYS (the heartbeat store keeps a
per-node member index, written at ingest: one ZMSCORE per look-up on Redis,
one query on the embedded store). Any other number answers exactly as a
number nobody holds, before the cache or the database is asked, so the
answer (and its cost) tells a node nothing about members of other nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import caches

from compensation.store import get_store, member_memory
from members.models import MemberProfile, MemberStatus

KEY = "ent:1:{}"
TOMBSTONE = "x"
TOMBSTONE_SECONDS = 5


@dataclass(frozen=True)
class Entitlement:
    member_no: str
    status: str
    until: datetime | None

    def entitled(self, now: datetime) -> bool:
        return self.status == MemberStatus.ACTIVE and self.until is not None and self.until > now


def _cache():
    return caches["default"] if settings.REDIS_URL else None


def _pack(status: str, until: datetime | None) -> tuple:
    return (status, until.timestamp() if until else None)


def _unpack(member_no: str, value: tuple) -> Entitlement | None:
    status, stamp = value
    if not status:
        return None  # no such member (cached too: nodes ask about strangers)
    return Entitlement(member_no, status, datetime.fromtimestamp(stamp, UTC) if stamp else None)


def entitlements_for_node(
    *, node_id: int, member_nos: list[str], now: datetime
) -> dict[str, Entitlement | None]:
    """What node ``node_id`` may learn about each number: the entitlement
    of a member it reported a heartbeat for within ENTITLEMENT_SCOPE_DAYS,
    None for everyone else, whether or not they exist (indistinguishable)."""
    numbers = list(dict.fromkeys(member_nos))
    own = get_store().members_seen(node_id, numbers, since=now - member_memory())
    known = entitlements_get([n for n in numbers if n in own])
    return {number: known.get(number) for number in numbers}


def entitlements_get(member_nos: list[str]) -> dict[str, Entitlement | None]:
    """The entitlement of each member number (None: no such member), for
    any node: callers answering a node go through entitlements_for_node."""
    cache = _cache()
    result: dict[str, Entitlement | None] = {}
    missing = list(dict.fromkeys(member_nos))
    if cache is not None and missing:
        hits = cache.get_many([KEY.format(n) for n in missing])
        still = []
        for number in missing:
            value = hits.get(KEY.format(number))
            if value is None or value == TOMBSTONE:
                still.append(number)
            else:
                result[number] = _unpack(number, value)
        missing = still
    if not missing:
        return result
    found = {
        no: (status, until)
        for no, status, until in MemberProfile.objects.filter(member_no__in=missing).values_list(
            "member_no", "status", "expires_at"
        )
    }
    timeout = settings.ENTITLEMENT_CACHE_SECONDS
    for number in missing:
        status, until = found.get(number, ("", None))
        result[number] = Entitlement(number, status, until) if status else None
        if cache is not None:
            cache.add(KEY.format(number), _pack(status, until), timeout)
    return result


def entitlements_forget(member_nos) -> None:
    """Drop cached answers (call after commit)."""
    cache = _cache()
    if cache is not None and member_nos:
        cache.set_many({KEY.format(n): TOMBSTONE for n in set(member_nos)}, TOMBSTONE_SECONDS)
