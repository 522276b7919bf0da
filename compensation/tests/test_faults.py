"""Faults for real: a stopped Redis broker at commit time, and a Celery worker
killed with SIGKILL in the middle of an incident payout. Each test runs its
own throwaway redis-server and real worker processes against the test
database (so PostgreSQL: an in-memory SQLite is invisible to a subprocess)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from compensation.models import (
    Claim,
    Disconnect,
    DisconnectStatus,
    IncidentMember,
    LedgerEntry,
    Outcome,
)
from compensation.services.detection import SWEEP_AFTER, detection_run
from compensation.services.incidents import incident_declare
from compensation.services.ingest import heartbeats_ingest
from compensation.services.memberships import membership_open_many
from compensation.services.nodes import node_create
from members.tests.factories import MemberFactory
from tests.workers import (
    broker_drained,
    reset_broker_connections,
    start_worker,
    stop_worker,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _worker(redis_url: str, log: Path):
    db = connection.settings_dict
    return start_worker(
        log,
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=redis_url,
    )


def test_broker_down_at_commit_loses_nothing_and_pays_once(broker, tmp_path, store):
    now = timezone.now().replace(microsecond=0)
    base = now - timedelta(hours=1)
    member = MemberFactory(membership__expires_at=now + timedelta(days=5)).member
    witness = MemberFactory(membership__expires_at=now + timedelta(days=5)).member
    node, _ = node_create(name="fault-node", now=now)
    items = [
        {"member": m.member_no, "session": "s", "at": (base + timedelta(minutes=t)).isoformat()}
        for m, ts in ((member, [0, 1, 15]), (witness, range(16)))
        for t in ts
    ]
    heartbeats_ingest(node=node, payload={"heartbeats": items}, now=now)

    broker.stop()  # the broker is down when detection commits
    detection_run(now=now)
    disconnect = Disconnect.objects.get()
    assert disconnect.status == DisconnectStatus.CLOSED
    assert disconnect.outcome == Outcome.PENDING  # recorded, not yet paid, not lost

    broker.start()
    reset_broker_connections()
    detection_run(now=now + SWEEP_AFTER + timedelta(seconds=5))  # the sweeper re-enqueues
    detection_run(now=now + SWEEP_AFTER + timedelta(seconds=6))  # and again: harmless
    worker = _worker(broker.url, tmp_path / "worker.log")
    try:
        assert wait_until(
            lambda: LedgerEntry.objects.exclude(kind="opening").filter(member=member).exists()
        ), (tmp_path / "worker.log").read_text()[-3000:]
        # The duplicate enqueue has run too once the broker is drained.
        assert wait_until(lambda: broker_drained(broker.url))
    finally:
        stop_worker(worker)
    assert LedgerEntry.objects.exclude(kind="opening").filter(member=member).count() == 1
    assert LedgerEntry.objects.exclude(kind="opening").get(member=member).minutes == 14


def test_worker_killed_mid_payout_resumes_and_pays_everyone_once(broker, tmp_path):
    now = timezone.now().replace(microsecond=0)
    from members.models import MemberProfile, User

    # 3,000 members, bulk-created: six payout chunks of 500.
    users = User.objects.bulk_create(User(email=f"bulk{i}@example.com") for i in range(3000))
    profiles = MemberProfile.objects.bulk_create(
        MemberProfile(user=u, member_no=f"KM{70000000 + i:08d}") for i, u in enumerate(users)
    )
    # Their time, like everyone's, as opening entries on the ledger.
    membership_open_many(expires={p.pk: now + timedelta(days=9) for p in profiles}, now=now)
    incident = incident_declare(
        kind="outage",
        scope="all",
        node_ids=[],
        started_at=now - timedelta(hours=2),
        ended_at=now - timedelta(hours=1),
        ratio=None,
        title_zh="故障",
        title_en="Outage",
        actor=None,
        now=now,
    )
    assert IncidentMember.objects.filter(incident=incident).count() == 0  # computed by the payout

    log = tmp_path / "worker1.log"
    worker = _worker(broker.url, log)
    try:
        paid_some = wait_until(
            lambda: Claim.objects.filter(source_ref=str(incident.public_id)).count() >= 500,
            timeout=90,
        )
        assert paid_some, log.read_text()[-3000:]
    finally:
        stop_worker(worker, kill=True)  # no warm shutdown: killed mid-task
    killed_at = Claim.objects.filter(source_ref=str(incident.public_id)).count()
    assert killed_at < 3000, "the worker finished before it could be killed; make the payout bigger"

    # The sweeper finds the payout stalled and re-plans only what is unpaid.
    detection_run(now=timezone.now() + SWEEP_AFTER + timedelta(seconds=5))
    log2 = tmp_path / "worker2.log"
    worker = _worker(broker.url, log2)
    try:
        done = wait_until(
            lambda: Claim.objects.filter(source_ref=str(incident.public_id)).count() == 3000,
            timeout=120,
        )
        assert done, log2.read_text()[-3000:]
        # Queued duplicates consumed; the warm stop below finishes the last.
        assert wait_until(lambda: broker_drained(broker.url, count_unacked=False))
    finally:
        stop_worker(worker)
    assert LedgerEntry.objects.exclude(kind="opening").count() == 3000
    assert Claim.objects.count() == 3000
    assert set(LedgerEntry.objects.exclude(kind="opening").values_list("minutes", flat=True)) == {
        60
    }
    from compensation.ledger import verify_chain

    count, problems = verify_chain()
    assert (count, problems) == (6000, [])  # 3,000 openings, 3,000 credits
