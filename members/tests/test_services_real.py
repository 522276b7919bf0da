"""Foundation checks against the real services CI provides."""

import threading
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils.module_loading import import_string

from members.models import MemberProfile, User
from members.services import accounts as services
from members.tasks import WORKER_HEARTBEAT_KEY, record_worker_heartbeat
from tests.workers import start_worker, stop_worker, wait_until


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_get_distinct_member_numbers_on_postgres(monkeypatch):
    # Force every thread to draw the same number first: the unique constraint
    # and the retry must still give each member their own number.
    drawn = iter(["KM55555555"] * 8 + [f"KM1000000{i}" for i in range(8)])
    lock = threading.Lock()

    def colliding():
        with lock:
            return next(drawn)

    monkeypatch.setattr(services, "_random_member_no", colliding)
    barrier = threading.Barrier(8)
    errors = []

    def signup(i):
        try:
            barrier.wait()
            User.objects.create_user(email=f"race{i}@example.com", password="x")
        except Exception as exc:  # noqa: BLE001 - the assertion reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=signup, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = list(MemberProfile.objects.values_list("member_no", flat=True))
    assert len(numbers) == 8
    assert len(set(numbers)) == 8


def _cache_at(location: str):
    """The project's cache backend on ``location``: what another process
    configured with that Redis URL reads and writes."""
    options = dict(settings.CACHES["default"])
    backend = import_string(options.pop("BACKEND"))
    options.pop("LOCATION")
    return backend(location, options)


@pytest.mark.redis
def test_cache_is_redis_and_shared():
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("kamen:probe", "ok", 10)
    # Another process's client on the same database sees it (under
    # pytest-xdist this process's cache has a database of its own).
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert any(b"kamen:probe" in key for key in client.keys("*kamen:probe*"))


@pytest.mark.redis
def test_a_real_worker_consumes_tasks_from_redis(output_dir):
    """End to end through the real broker: enqueue, a separate worker process
    runs it, and its effect is visible here."""
    # The worker's cache is REDIS_URL's database, which under pytest-xdist
    # is not this process's own.
    worker_cache = _cache_at(settings.REDIS_URL)
    worker_cache.delete(WORKER_HEARTBEAT_KEY)
    log_path = Path(output_dir) / "celery-worker-foundation.log"
    worker = start_worker(log_path)
    try:
        record_worker_heartbeat.delay()
        consumed = wait_until(lambda: worker_cache.get(WORKER_HEARTBEAT_KEY) is not None)
    finally:
        stop_worker(worker)
    assert consumed, log_path.read_text()[-2000:]
