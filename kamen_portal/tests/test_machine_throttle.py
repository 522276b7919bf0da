"""The per-machine throttle: a sliding window from two counters, one round
trip on Redis, refused requests not counted, and a Retry-After that lets a
client that waits as told in."""

from types import SimpleNamespace

import pytest
from django.test import override_settings

from compensation.api.authentication import NodeRateThrottle
from compensation.models import Node
from kamen_portal import cache as cache_module
from kamen_portal.cache import RedisCache, window_counts

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _request(pk: int):
    node = Node(pk=pk, name=f"n{pk}")
    return SimpleNamespace(auth=node)


def _throttle(clock) -> NodeRateThrottle:
    throttle = NodeRateThrottle()
    throttle.timer = clock
    return throttle


def _allowed(clock, request) -> tuple[bool, NodeRateThrottle]:
    throttle = _throttle(clock)
    return throttle.allow_request(request, None), throttle


@override_settings(NODE_THROTTLE_RATE="3/minute")
def test_refuses_over_the_rate_and_does_not_count_refusals():
    clock, request = Clock(6_000_000.0), _request(1)
    answers = [_allowed(clock, request)[0] for _ in range(5)]
    assert answers == [True, True, True, False, False]
    # Refused requests were taken back: the window holds the three admitted.
    assert window_counts("throttle:node:1", window=100_000, ttl=121) == (0, 4)


@override_settings(NODE_THROTTLE_RATE="3/minute")
def test_a_new_window_still_remembers_the_last_one():
    """At the start of the next minute the previous minute's three requests
    still weigh almost fully: a fixed window would let three more in."""
    clock, request = Clock(6_000_000.0 + 50), _request(2)
    assert [_allowed(clock, request)[0] for _ in range(3)] == [True, True, True]
    clock.now = 6_000_000.0 + 61  # 1 s into the next window
    assert _allowed(clock, request)[0] is False
    clock.now = 6_000_000.0 + 60 + 30  # half-way: 3 × 0.5 + 1 <= 3
    assert _allowed(clock, request)[0] is True


@override_settings(NODE_THROTTLE_RATE="3/minute")
def test_retry_after_is_when_the_next_request_gets_in():
    clock, request = Clock(6_000_000.0 + 10), _request(3)
    for _ in range(3):
        _allowed(clock, request)
    allowed, throttle = _allowed(clock, request)
    assert allowed is False
    wait = throttle.wait()
    # Full this window (50 s left); next window needs 3 × (1 - f) + 1 <= 3,
    # i.e. f >= 1/3: 20 s more.
    assert wait == pytest.approx(50 + 20, abs=0.01)
    clock.now += wait - 0.5
    assert _allowed(clock, request)[0] is False
    clock.now += 1
    assert _allowed(clock, request)[0] is True


@override_settings(NODE_THROTTLE_RATE="3/minute")
def test_nodes_are_counted_apart():
    clock = Clock(6_000_000.0)
    for _ in range(3):
        _allowed(clock, _request(4))
    assert _allowed(clock, _request(4))[0] is False
    assert _allowed(clock, _request(5))[0] is True


@override_settings(NODE_THROTTLE_RATE="3/minute")
def test_the_same_rule_holds_without_redis(monkeypatch):
    """The embedded default has no Redis: the cache-API path counts alike."""
    monkeypatch.setattr(cache_module, "redis_client", lambda alias="default": None)
    clock, request = Clock(6_000_000.0), _request(6)
    assert [_allowed(clock, request)[0] for _ in range(5)] == [True, True, True, False, False]
    clock.now += 60 + 30
    assert _allowed(clock, request)[0] is True


def test_redis_cache_reuses_one_client_per_pool():
    # Building a client opens no connection: no server is needed here.
    backend = RedisCache("redis://127.0.0.1:1/0", {})
    first = backend._cache.get_client(write=True)
    assert backend._cache.get_client() is first
    assert first.connection_pool is backend._cache._get_connection_pool(True)
