"""The shared cache: Django's Redis backend with one client per pool, and
the counter operations that Django's cache API has no single call for.

Django's Redis backend builds a new ``redis.Redis`` per operation; its
constructor fills a case-insensitive table of ~170 response callbacks each
time. Profiled on a node's entitlement look-up (four cache operations), that
was 13 % of the request. A client is only a handle on the connection pool
and is safe to share between threads, so one per pool is kept.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time

try:
    import fcntl
except ImportError:  # Windows: the process lock alone
    fcntl = None

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient


def redis_client(alias: str = "default"):
    """The raw redis-py client behind a Redis cache, or None for any other
    backend (the embedded file cache)."""
    backend = caches[alias]
    if isinstance(backend, DjangoRedisCache):
        return backend._cache.get_client(write=True)
    return None


def window_counts(key: str, *, window: int, ttl: int, amount: int = 1) -> tuple[int, int]:
    """Count ``amount`` more events in fixed window number ``window`` of
    ``key`` and answer (events in the previous window, events in this one,
    these included). One pipelined round trip on Redis; elsewhere a few cache
    calls (the embedded default has one web process)."""
    backend = caches["default"]
    current = f"{key}:{window}"
    previous = f"{key}:{window - 1}"
    client = redis_client()
    if client is not None:
        cur, prev = backend.make_and_validate_key(current), backend.make_and_validate_key(previous)
        pipe = client.pipeline(transaction=False)
        pipe.set(cur, 0, ex=ttl, nx=True)
        pipe.incr(cur, amount)
        pipe.get(prev)
        _created, count, before = pipe.execute()
        return int(before or 0), int(count)
    backend.add(current, 0, timeout=ttl)
    try:
        count = backend.incr(current, amount)
    except ValueError:  # expired between the two calls
        backend.set(current, amount, timeout=ttl)
        count = amount
    return int(backend.get(previous) or 0), count


def window_uncount(key: str, *, window: int, amount: int = 1) -> None:
    """Take back events counted by ``window_counts`` (they were refused)."""
    backend = caches["default"]
    with contextlib.suppress(ValueError):  # already expired
        backend.decr(f"{key}:{window}", amount)


# --- Atomic counters with a fixed expiry (lock-outs) ------------------------------
#
# A lock-out must count an attempt *before* checking it: a check followed by
# a count lets N concurrent attempts all pass the check. ``counter_hit``
# counts and answers the new count in one atomic step; the expiry is set when
# the counter is created and never moved by later hits.

_TAKE_BACK_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""
# Embedded default (file cache): one lock for this process's threads, and an
# advisory file lock for the other processes sharing the cache directory.
_counter_lock = threading.Lock()


@contextlib.contextmanager
def _counter_guard(backend):
    with _counter_lock:
        directory = getattr(backend, "_dir", None)
        if fcntl is None or directory is None:
            yield
            return
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "counters.lock"), "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def counter_hit(key: str, *, ttl: int) -> int:
    """Count one more event for ``key`` and answer the count, this one
    included. The counter expires ``ttl`` seconds after its first event.
    On Redis one MULTI/EXEC (SET NX EX, INCR): atomic across every process.
    Elsewhere under a process and file lock, the expiry kept in the value
    (Django's generic ``incr`` would reset it to the default timeout)."""
    backend = caches["default"]
    client = redis_client()
    if client is not None:
        name = backend.make_and_validate_key(key)
        pipe = client.pipeline(transaction=True)
        pipe.set(name, 0, ex=ttl, nx=True)
        pipe.incr(name)
        _created, count = pipe.execute()
        return int(count)
    with _counter_guard(backend):
        now = time.time()
        value = backend.get(key)
        if isinstance(value, tuple) and len(value) == 2 and value[1] > now:
            count, deadline = value[0] + 1, value[1]
        else:
            count, deadline = 1, now + ttl
        backend.set(key, (count, deadline), timeout=max(1, math.ceil(deadline - now)))
        return count


def counter_take_back(key: str) -> None:
    """Undo one ``counter_hit`` (the event turned out not to count). A
    counter that already expired stays gone: never recreated without its
    expiry."""
    backend = caches["default"]
    client = redis_client()
    if client is not None:
        client.eval(_TAKE_BACK_LUA, 1, backend.make_and_validate_key(key))
        return
    with _counter_guard(backend):
        now = time.time()
        value = backend.get(key)
        if isinstance(value, tuple) and len(value) == 2 and value[1] > now and value[0] > 0:
            backend.set(key, (value[0] - 1, value[1]), timeout=max(1, math.ceil(value[1] - now)))


def counter_clear(key: str) -> None:
    """Forget the counter."""
    caches["default"].delete(key)
