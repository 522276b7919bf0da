"""Races on real PostgreSQL: threads released together by a barrier."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from compensation.models import Claim, Disconnect, DisconnectStatus, LedgerEntry
from compensation.services.credit import compensation_credit
from compensation.services.detection import detection_run
from compensation.services.disconnects import disconnect_compensate
from compensation.services.incidents import (
    incident_declare,
    incident_pay_members,
)
from compensation.services.ingest import heartbeats_ingest
from compensation.services.nodes import node_create
from compensation.tests.conftest import T0
from members.tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = T0 + timedelta(hours=2)


def race(fn, n=6):
    barrier = threading.Barrier(n)
    errors = []

    def run():
        try:
            barrier.wait()
            fn()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _member():
    return MemberFactory(membership__expires_at=T0 + timedelta(days=30)).member


def test_the_same_credit_from_six_threads_pays_once():
    member = _member()
    before = member.expires_at

    def credit():
        compensation_credit(
            member_id=member.pk,
            intervals=[(T0, T0 + timedelta(minutes=12))],
            source_kind="disconnect",
            source_ref="race",
            idempotency_key="disconnect:race",
            now=NOW,
        )

    race(credit)
    member.refresh_from_db()
    assert LedgerEntry.objects.exclude(kind="opening").count() == 1
    assert Claim.objects.count() == 1
    assert member.expires_at == before + timedelta(minutes=12)


def test_overlapping_credits_from_different_sources_at_once_pay_the_union():
    member = _member()
    before = member.expires_at
    counter = iter(range(100))
    lock = threading.Lock()

    def credit():
        with lock:
            i = next(counter)
        compensation_credit(
            member_id=member.pk,
            intervals=[(T0 + timedelta(minutes=i * 5), T0 + timedelta(minutes=i * 5 + 30))],
            source_kind="incident",
            source_ref=str(i),
            idempotency_key=f"src:{i}",
            now=NOW,
        )

    race(credit)
    member.refresh_from_db()
    # Six 30-minute windows starting 5 minutes apart cover 0 -> 55.
    assert member.expires_at == before + timedelta(minutes=55)
    assert sum(LedgerEntry.objects.exclude(kind="opening").values_list("minutes", flat=True)) == 55


def test_compensation_task_run_twice_at_once_writes_one_entry(
    store, django_capture_on_commit_callbacks
):
    node, _ = node_create(name="race-node", now=T0)
    m1, m2 = _member(), _member()
    items = [
        {"member": m.member_no, "session": "s", "at": (T0 + timedelta(minutes=t)).isoformat()}
        for m, ts in ((m1, [0, 1, 20]), (m2, range(0, 21)))
        for t in ts
    ]
    heartbeats_ingest(node=node, payload={"heartbeats": items}, now=NOW)
    detection_run(now=NOW)  # on_commit enqueues are not executed here
    disconnect = Disconnect.objects.get()
    assert disconnect.status == DisconnectStatus.CLOSED

    race(lambda: disconnect_compensate(disconnect_id=disconnect.pk, now=NOW))
    assert LedgerEntry.objects.exclude(kind="opening").count() == 1
    disconnect.refresh_from_db()
    assert disconnect.credited_minutes == 19


def test_detection_passes_at_once_record_each_disconnect_once(store):
    node, _ = node_create(name="race-node", now=T0)
    members = [_member() for _ in range(20)]
    witness = _member()
    items = [
        {"member": m.member_no, "session": "s", "at": (T0 + timedelta(minutes=t)).isoformat()}
        for m in members
        for t in (0, 1, 2, 30)
    ]
    items += [
        {"member": witness.member_no, "session": "w", "at": (T0 + timedelta(minutes=t)).isoformat()}
        for t in range(31)
    ]
    heartbeats_ingest(node=node, payload={"heartbeats": items}, now=NOW)
    race(lambda: detection_run(now=NOW), n=4)
    assert Disconnect.objects.count() == 20
    assert Disconnect.objects.filter(status=DisconnectStatus.CLOSED).count() == 20


def test_two_workers_paying_the_same_incident_chunk_pay_each_member_once(monkeypatch):
    from compensation import tasks

    # Keep the payout for the racing threads: no automatic one on close.
    monkeypatch.setattr(tasks.pay_incident, "apply_async", lambda *a, **k: None)
    members = [_member() for _ in range(30)]
    before = {m.pk: m.expires_at for m in members}
    incident = incident_declare(
        kind="outage",
        scope="all",
        node_ids=[],
        started_at=T0,
        ended_at=T0 + timedelta(minutes=45),
        ratio=None,
        title_zh="故障",
        title_en="Outage",
        actor=None,
        now=NOW,
    )
    from compensation.services.incidents import incident_payout_plan

    chunks = incident_payout_plan(incident_id=incident.pk, threshold=timedelta(minutes=5))
    ids = [m for chunk in chunks for m in chunk]
    assert sorted(ids) == sorted(m.pk for m in members)
    race(lambda: incident_pay_members(incident_id=incident.pk, member_ids=ids, now=NOW), n=3)
    assert LedgerEntry.objects.exclude(kind="opening").count() == 30
    for member in members:
        member.refresh_from_db()
        assert member.expires_at == before[member.pk] + timedelta(minutes=45)
    assert incident_payout_plan(incident_id=incident.pk, threshold=timedelta(minutes=5)) == []
