"""Hot heartbeat state: per session the last event time, per node the
watermark (latest event time) and last arrival, and the gaps found at ingest.

Two backends with one contract, exercised by the same scenario tests:
- RedisStore (REDIS_URL set): one Lua call per batch, no SQL at all;
- DatabaseStore (embedded default): the same rules in Python over three
  small tables; slower, same results.

The rules, applied per beat in event-time order within a batch:
- a beat newer than the session's last one by more than the threshold closes a
  gap ``(last, beat)``: recorded for the detection pass;
- an ``ended`` beat (normal logout) ends the session: silence after it is
  never a disconnect; a late ``alive`` beat from before it changes nothing;
- duplicates and beats older than the session's last one change nothing;
- the node's watermark only moves forward; a jump of more than the threshold
  is a node-wide gap (the node itself was silent).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import StrIndex, Substr

from .models import NodeState, PendingGap, SessionState
from .store_lua import APPLY_LUA, FLAG_LUA

MICRO = 1_000_000


def to_us(value: datetime) -> int:
    return int(round(value.timestamp() * MICRO))


def from_us(value: int | float | str) -> datetime:
    return datetime.fromtimestamp(int(float(value)) / MICRO, tz=UTC)


@dataclass(frozen=True)
class Beat:
    key: str  # "<member_no>|<session>"
    at: datetime
    ended: bool


@dataclass(frozen=True)
class Gap:
    ref: str
    node_id: int
    key: str  # empty for a node-wide gap
    start: datetime
    end: datetime


@dataclass(frozen=True)
class NodeClock:
    watermark: datetime | None
    last_arrival: datetime | None


def member_memory() -> timedelta:
    """How long a node's member index remembers a member after their last
    beat there (ENTITLEMENT_SCOPE_DAYS: a node reads entitlements only of
    members it has reported within it)."""
    return timedelta(days=settings.ENTITLEMENT_SCOPE_DAYS)


def split_key(key: str) -> tuple[str, str]:
    member_no, _, session = key.partition("|")
    return member_no, session


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------

GROUP = "detector"


class RedisStore:
    def __init__(self, url: str, prefix: str = "kamen:hb"):

        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._apply = self.redis.register_script(APPLY_LUA)
        self._flag = self.redis.register_script(FLAG_LUA)
        self.gaps_key = f"{prefix}:gaps"
        self.nodes_key = f"{prefix}:nodes"
        self.consumer = f"c-{uuid.uuid4().hex[:12]}"

    def _k(self, node_id: int, name: str) -> str:
        return f"{self.prefix}:n{node_id}:{name}"

    def apply(
        self, node_id: int, beats: list[Beat], *, threshold_s: float, arrival: datetime
    ) -> None:
        keys = [
            self._k(node_id, "live"),
            self._k(node_id, "silent"),
            self._k(node_id, "ended"),
            self._k(node_id, "wm"),
            self._k(node_id, "arrival"),
            self.gaps_key,
            self.nodes_key,
            self._k(node_id, "members"),
        ]
        # One argument for the whole batch ("key at 0|1" lines; keys never
        # hold spaces or newlines): encoding 1,500 arguments per batch of 500
        # cost more client CPU than the script itself.
        packed = "".join(
            f"{beat.key} {to_us(beat.at)} {'1' if beat.ended else '0'}\n" for beat in beats
        )
        cutoff = to_us(arrival - member_memory())
        self._apply(
            keys=keys, args=[int(threshold_s * MICRO), to_us(arrival), node_id, packed, cutoff]
        )

    def members_seen(self, node_id: int, member_nos: list[str], *, since: datetime) -> set[str]:
        """Which of ``member_nos`` had a beat on the node at or after
        ``since``: one ZMSCORE on the node's member index."""
        if not member_nos:
            return set()
        scores = self.redis.zmscore(self._k(node_id, "members"), member_nos)
        floor = to_us(since)
        return {n for n, s in zip(member_nos, scores, strict=True) if s is not None and s >= floor}

    def clocks(self) -> dict[int, NodeClock]:
        node_ids = sorted(int(n) for n in self.redis.smembers(self.nodes_key))
        if not node_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for node_id in node_ids:
            pipe.get(self._k(node_id, "wm"))
            pipe.get(self._k(node_id, "arrival"))
        values = pipe.execute()
        result = {}
        for i, node_id in enumerate(node_ids):
            wm, arrival = values[2 * i], values[2 * i + 1]
            result[node_id] = NodeClock(
                from_us(wm) if wm is not None else None,
                from_us(arrival) if arrival is not None else None,
            )
        return result

    def flag_silent(
        self, node_id: int, *, before: datetime, limit: int = 100_000
    ) -> list[tuple[str, datetime]]:
        moved = self._flag(
            keys=[self._k(node_id, "live"), self._k(node_id, "silent")],
            args=[to_us(before), limit],
        )
        return [(moved[i], from_us(moved[i + 1])) for i in range(0, len(moved), 2)]

    def forget(self, node_id: int, keys: list[str]) -> None:
        if keys:
            self.redis.zrem(self._k(node_id, "silent"), *keys)

    def live_count(self, node_id: int) -> int:
        return self.redis.zcard(self._k(node_id, "live"))

    def seen_since(self, node_id: int, since: datetime) -> list[str]:
        score = to_us(since)
        keys: set[str] = set()
        for name in ("live", "silent", "ended"):
            keys.update(self.redis.zrangebyscore(self._k(node_id, name), score, "+inf"))
        return sorted(keys)

    def seen_between(self, node_id: int, lo: datetime, hi: datetime) -> list[str]:
        """Sessions (not logged out) whose last beat lies in ``[lo, hi]``."""
        keys: set[str] = set()
        for name in ("live", "silent"):
            keys.update(self.redis.zrangebyscore(self._k(node_id, name), to_us(lo), to_us(hi)))
        return sorted(keys)

    def _ensure_group(self) -> None:

        try:
            self.redis.xgroup_create(self.gaps_key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @contextmanager
    def gap_batch(self, limit: int = 1000) -> Iterator[list[Gap]]:
        """Claim up to ``limit`` gaps; they are acknowledged only if the block
        exits normally, so a crashed pass leaves them to be reclaimed."""
        self._ensure_group()
        messages = []
        # Gaps a crashed or stalled pass claimed over a minute ago come first.
        _next, claimed, *_ = self.redis.xautoclaim(
            self.gaps_key, GROUP, self.consumer, min_idle_time=60_000, start_id="0-0", count=limit
        )
        messages.extend(claimed)
        if len(messages) < limit:
            read = self.redis.xreadgroup(
                GROUP, self.consumer, {self.gaps_key: ">"}, count=limit - len(messages)
            )
            for _stream, entries in read or []:
                messages.extend(entries)
        gaps = [
            Gap(
                ref=msg_id,
                node_id=int(fields["node"]),
                key=fields["key"],
                start=from_us(fields["start"]),
                end=from_us(fields["end"]),
            )
            for msg_id, fields in messages
            if fields
        ]
        yield gaps
        if messages:
            ids = [msg_id for msg_id, _fields in messages]
            self.redis.xack(self.gaps_key, GROUP, *ids)
            self.redis.xdel(self.gaps_key, *ids)

    def reset(self) -> None:
        """Delete every key of this store (tests and benchmarks only)."""
        for key in self.redis.scan_iter(f"{self.prefix}:*", count=1000):
            self.redis.delete(key)


# --------------------------------------------------------------------------
# Database (embedded default)
# --------------------------------------------------------------------------


class DatabaseStore:
    def apply(
        self, node_id: int, beats: list[Beat], *, threshold_s: float, arrival: datetime
    ) -> None:

        live, ended = SessionState.State.LIVE, SessionState.State.ENDED
        with transaction.atomic():
            # The node's row is the lock: one batch of a node at a time.
            clock, _ = NodeState.objects.select_for_update().get_or_create(node_id=node_id)
            keys = {b.key for b in beats}
            states = {s.key: s for s in SessionState.objects.filter(node_id=node_id, key__in=keys)}
            created: dict[str, SessionState] = {}
            dirty: dict[str, SessionState] = {}
            gaps: list[PendingGap] = []
            wm = clock.watermark
            for beat in beats:
                if wm is not None and (beat.at - wm).total_seconds() > threshold_s:
                    gaps.append(PendingGap(node_id=node_id, key="", start=wm, end=beat.at))
                if wm is None or beat.at > wm:
                    wm = beat.at
                state = states.get(beat.key)
                if state is None:
                    state = SessionState(
                        node_id=node_id,
                        key=beat.key,
                        last_seen=beat.at,
                        state=ended if beat.ended else live,
                    )
                    states[beat.key] = created[beat.key] = state
                    continue
                if state.state == ended:
                    if beat.at > state.last_seen:
                        # After a logout, a newer beat starts a fresh session.
                        state.last_seen = beat.at
                        state.state = ended if beat.ended else live
                        dirty[beat.key] = state
                    continue
                if beat.at <= state.last_seen:
                    continue  # duplicate or out of order
                if (beat.at - state.last_seen).total_seconds() > threshold_s:
                    gaps.append(
                        PendingGap(
                            node_id=node_id, key=beat.key, start=state.last_seen, end=beat.at
                        )
                    )
                state.last_seen = beat.at
                state.state = ended if beat.ended else live
                dirty[beat.key] = state
            SessionState.objects.bulk_create(created.values())
            SessionState.objects.bulk_update(
                [s for k, s in dirty.items() if k not in created], ["last_seen", "state"]
            )
            PendingGap.objects.bulk_create(gaps)
            clock.watermark = wm
            clock.last_arrival = arrival
            clock.save()

    def clocks(self) -> dict[int, NodeClock]:

        return {
            s.node_id: NodeClock(s.watermark, s.last_arrival)
            for s in NodeState.objects.order_by("node_id")
        }

    def flag_silent(
        self, node_id: int, *, before: datetime, limit: int = 100_000
    ) -> list[tuple[str, datetime]]:

        with transaction.atomic():
            rows = list(
                SessionState.objects.select_for_update()
                .filter(node_id=node_id, state=SessionState.State.LIVE, last_seen__lt=before)
                .order_by("last_seen")
                .values_list("pk", "key", "last_seen")[:limit]
            )
            SessionState.objects.filter(pk__in=[r[0] for r in rows]).update(
                state=SessionState.State.SILENT
            )
        return [(key, last_seen) for _pk, key, last_seen in rows]

    def forget(self, node_id: int, keys: list[str]) -> None:

        SessionState.objects.filter(
            node_id=node_id, key__in=keys, state=SessionState.State.SILENT
        ).delete()

    def live_count(self, node_id: int) -> int:

        return SessionState.objects.filter(node_id=node_id, state=SessionState.State.LIVE).count()

    def members_seen(self, node_id: int, member_nos: list[str], *, since: datetime) -> set[str]:
        """Which of ``member_nos`` have a session on the node whose last beat
        is at or after ``since``: one query per 500 numbers."""
        found: set[str] = set()
        member = Substr("key", 1, StrIndex("key", Value("|")) - 1)
        for start in range(0, len(member_nos), 500):
            chunk = member_nos[start : start + 500]
            found.update(
                SessionState.objects.filter(node_id=node_id, last_seen__gte=since)
                .annotate(member=member)
                .filter(member__in=chunk)
                .values_list("member", flat=True)
            )
        return found

    def seen_since(self, node_id: int, since: datetime) -> list[str]:

        return sorted(
            SessionState.objects.filter(node_id=node_id, last_seen__gte=since).values_list(
                "key", flat=True
            )
        )

    def seen_between(self, node_id: int, lo: datetime, hi: datetime) -> list[str]:

        return sorted(
            SessionState.objects.filter(
                node_id=node_id,
                last_seen__gte=lo,
                last_seen__lte=hi,
                state__in=[SessionState.State.LIVE, SessionState.State.SILENT],
            ).values_list("key", flat=True)
        )

    @contextmanager
    def gap_batch(self, limit: int = 1000) -> Iterator[list[Gap]]:

        with transaction.atomic():
            rows = list(
                PendingGap.objects.select_for_update(skip_locked=True).order_by("pk")[:limit]
            )
            yield [
                Gap(ref=str(r.pk), node_id=r.node_id, key=r.key, start=r.start, end=r.end)
                for r in rows
            ]
            PendingGap.objects.filter(pk__in=[r.pk for r in rows]).delete()

    def reset(self) -> None:

        SessionState.objects.all().delete()
        NodeState.objects.all().delete()
        PendingGap.objects.all().delete()


_store = None


def get_store():
    """The configured store (Redis when REDIS_URL is set)."""
    global _store
    if _store is None:
        _store = RedisStore(settings.REDIS_URL) if settings.REDIS_URL else DatabaseStore()
    return _store
