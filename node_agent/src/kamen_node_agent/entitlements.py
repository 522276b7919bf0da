"""Entitlement checks on a node's connect path: ``check_entitlement`` asks the
portal (``GET /api/v1/entitlements/<member_no>/`` with the node token) whether
a member may connect now, and until when, and keeps the answer locally.

- A fresh local answer (younger than ``ttl`` seconds) is used without asking.
- A member's paid time ends at ``until``: a cached answer is re-checked
  against the clock on every call, so an expiry passing needs no request.
- Portal unreachable (or 5xx): a cached answer is used until its ``until``
  whatever its age ("stale if error": members keep the time the portal last
  confirmed); with no answer at all the agent refuses (fail closed) unless
  ``fail_open`` is set.
- ``prefetch`` fills the cache for up to 1,000 members with one request
  (``POST /api/v1/entitlements/``), e.g. for everyone connected at start-up.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime

from . import __version__
from ._compat import UTC

MAX_BATCH = 1000


@dataclass(frozen=True)
class Entitlement:
    member: str
    known: bool
    status: str
    until: datetime | None
    fetched_at: float  # time.monotonic() of the portal's answer
    from_cache: bool = False
    stale: bool = False  # the portal could not be asked

    def entitled(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return (
            self.known and self.status == "active" and self.until is not None and self.until > now
        )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class EntitlementClient:
    def __init__(
        self,
        portal_url: str,
        token: str,
        *,
        ttl: float = 30.0,
        timeout: float = 2.0,
        fail_open: bool = False,
        clock=time.monotonic,
    ):
        if not portal_url.startswith(("http://", "https://")):
            raise ValueError("the portal URL must start with http:// or https://")
        self.base = portal_url.rstrip("/") + "/api/v1/entitlements/"
        self.token, self.ttl, self.timeout, self.fail_open = token, ttl, timeout, fail_open
        self.clock = clock
        self._cache: dict[str, Entitlement] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def _request(self, url: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
            url,
            data=data,
            method="POST" if data else "GET",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"kamen-node-agent/{__version__}",
            },
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            with error:
                try:
                    return error.code, json.loads(error.read() or b"{}")
                except ValueError:
                    return error.code, {}

    def _store(self, answer: dict) -> Entitlement:
        entitlement = Entitlement(
            member=answer["member"],
            known=True,
            status=answer["status"],
            until=_parse_time(answer.get("until")),
            fetched_at=self.clock(),
        )
        with self._lock:
            self._cache[entitlement.member] = entitlement
        return entitlement

    def _unknown(self, member_no: str) -> Entitlement:
        entitlement = Entitlement(member_no, False, "", None, self.clock())
        with self._lock:
            self._cache[member_no] = entitlement
        return entitlement

    def check_entitlement(self, member_no: str) -> Entitlement:
        """The member's entitlement; call ``.entitled()`` to admit or refuse."""
        with self._lock:
            cached = self._cache.get(member_no)
        if cached is not None and self.clock() - cached.fetched_at < self.ttl:
            return Entitlement(**{**cached.__dict__, "from_cache": True})
        try:
            status, body = self._request(self.base + urllib.request.quote(member_no, safe="") + "/")
        except (OSError, ValueError):
            status, body = 0, {}
        if status == 200:
            return self._store(body)
        if status == 404:
            return self._unknown(member_no)
        # Unreachable, throttled, 5xx, token being rotated: the last answer.
        if cached is not None:
            return Entitlement(**{**cached.__dict__, "from_cache": True, "stale": True})
        if self.fail_open:
            return Entitlement(
                member_no,
                True,
                "active",
                datetime.max.replace(tzinfo=UTC),
                self.clock(),
                stale=True,
            )
        return Entitlement(member_no, False, "", None, self.clock(), stale=True)

    def prefetch(self, member_nos: list[str]) -> int:
        """Fill the cache for many members (1,000 per request). Returns how
        many answers were stored; nothing is raised when the portal is down."""
        stored = 0
        for start in range(0, len(member_nos), MAX_BATCH):
            chunk = member_nos[start : start + MAX_BATCH]
            try:
                status, body = self._request(self.base, {"members": chunk})
            except (OSError, ValueError):
                return stored
            if status != 200:
                return stored
            for answer in body.get("entitlements", []):
                self._store(answer)
                stored += 1
            for rejected in body.get("rejected", []):
                self._unknown(rejected["member"])
        return stored
