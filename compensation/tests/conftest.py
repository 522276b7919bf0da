import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from compensation import store as store_module
from compensation.services.detection import detection_run
from compensation.services.ingest import heartbeats_ingest
from compensation.services.nodes import node_create
from kamen_portal.celery import app as celery_app
from members.tests.factories import MemberFactory

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def credit_disconnects(members, start: int, n: int, *, prefix: str, now: datetime) -> None:
    """``n`` ten-minute disconnect credits ``start .. start + n - 1``, spread
    over ``members`` in turn, 20 minutes apart from T0: entries for the
    ledger and its log, without the detection pipeline."""
    from compensation.services.credit import compensation_credit

    for i in range(start, start + n):
        compensation_credit(
            member_id=members[i % len(members)].pk,
            intervals=[(T0 + timedelta(minutes=i * 20), T0 + timedelta(minutes=i * 20 + 10))],
            source_kind="disconnect",
            source_ref=f"{prefix}-{i}",
            idempotency_key=f"{prefix}-{i}",
            now=now,
        )


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _redis_store():
    store = store_module.RedisStore(settings.REDIS_URL, prefix=f"test:{uuid.uuid4().hex[:8]}")
    return store


@pytest.fixture(params=["db", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, monkeypatch):
    """Each scenario runs against both heartbeat stores."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs Redis: set REDIS_URL=redis://...")
        chosen = _redis_store()
    else:
        chosen = store_module.DatabaseStore()
    monkeypatch.setattr(store_module, "_store", chosen)
    yield chosen
    if request.param == "redis":
        chosen.reset()


class World:
    """A small platform: nodes, members, and helpers that drive the real
    ingest and detection services on event time."""

    def __init__(self, django_capture_on_commit_callbacks):
        self.capture = django_capture_on_commit_callbacks
        self.now = T0 + timedelta(hours=2)

    def node(self, name="node-a"):
        node, _token = node_create(name=name, now=T0)
        return node

    def member(self, **kwargs):
        kwargs.setdefault("membership__expires_at", T0 + timedelta(days=30))
        return MemberFactory(**kwargs).member

    @staticmethod
    def beat(member, minute, *, session="s1", state="alive", base=T0):
        at = base + timedelta(minutes=minute)
        return {
            "member": member.member_no,
            "session": session,
            "at": at.isoformat(),
            "state": state,
        }

    def beats(self, member, minutes, **kwargs):
        return [self.beat(member, m, **kwargs) for m in minutes]

    def post(self, node, items, *, now=None):
        with self.capture(execute=True):
            return heartbeats_ingest(node=node, payload={"heartbeats": items}, now=now or self.now)

    def detect(self, *, now=None):
        with self.capture(execute=True):
            return detection_run(now=now or self.now)


@pytest.fixture
def world(db, store, django_capture_on_commit_callbacks):
    return World(django_capture_on_commit_callbacks)
