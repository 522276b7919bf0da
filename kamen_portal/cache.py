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


def window_counts(key: str, *, window: int, ttl: int) -> tuple[int, int]:
    """Count one more event in fixed window number ``window`` of ``key`` and
    answer (events in the previous window, events in this one, this
    included). One pipelined round trip on Redis; elsewhere a few cache
    calls (the embedded default has one web process)."""
    backend = caches["default"]
    current = f"{key}:{window}"
    previous = f"{key}:{window - 1}"
    client = redis_client()
    if client is not None:
        cur, prev = backend.make_and_validate_key(current), backend.make_and_validate_key(previous)
        pipe = client.pipeline(transaction=False)
        pipe.set(cur, 0, ex=ttl, nx=True)
        pipe.incr(cur)
        pipe.get(prev)
        _created, count, before = pipe.execute()
        return int(before or 0), int(count)
    backend.add(current, 0, timeout=ttl)
    try:
        count = backend.incr(current)
    except ValueError:  # expired between the two calls
        backend.set(current, 1, timeout=ttl)
        count = 1
    return int(backend.get(previous) or 0), count


def window_uncount(key: str, *, window: int) -> None:
    """Take back an event counted by ``window_counts`` (it was refused)."""
    backend = caches["default"]
    with contextlib.suppress(ValueError):  # already expired
        backend.decr(f"{key}:{window}")
