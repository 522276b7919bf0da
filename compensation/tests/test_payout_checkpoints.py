"""Issue 23: a checkpoint is published whenever a payout chunk commits,
coalesced over a burst of chunks; the minute beat stays."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from compensation.models import LedgerEntry, LedgerLogCheckpoint
from compensation.services.incidents import (
    incident_declare,
    incident_pay_members,
    incident_payout_plan,
)
from kamen_portal import queue
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


class Scheduled(list):
    """The countdowns of the publish runs scheduled; ``elapse()`` runs them,
    as the worker would once their countdown is over (eager mode would run
    them at once)."""

    def elapse(self):
        for run in self.due:
            run()
        self.due.clear()


@pytest.fixture
def scheduled(monkeypatch):
    runs = Scheduled()
    runs.due = []
    real = queue.task_named

    def spy(name):
        task = real(name)
        if name != "compensation.tasks.publish_ledger_head":
            return task

        class Recorder:
            def apply_async(self, *args, countdown=None, **kwargs):
                runs.append(countdown)
                runs.due.append(lambda: task.apply_async(*args, **kwargs))

        return Recorder()

    monkeypatch.setattr(queue, "task_named", spy)
    return runs


def _closed_outage(now, members=3):
    for _ in range(members):
        MemberFactory(membership__expires_at=now + timedelta(days=3))
    return incident_declare(
        kind="outage",
        scope="all",
        node_ids=[],
        started_at=now - timedelta(minutes=40),
        ended_at=now - timedelta(minutes=10),
        ratio=None,
        title_zh="故障",
        title_en="Outage",
        actor=None,
        now=now,
    )


def test_a_committed_chunk_is_checkpointed_and_a_burst_signs_once(
    scheduled, django_capture_on_commit_callbacks
):
    now = timezone.now()
    incident = _closed_outage(now)  # its own payout task is not run: no commit
    (chunk,) = incident_payout_plan(incident_id=incident.pk, threshold=timedelta(minutes=5))
    before = LedgerLogCheckpoint.objects.count()
    for member_id in chunk:  # three chunks committing within seconds
        with django_capture_on_commit_callbacks(execute=True):
            incident_pay_members(incident_id=incident.pk, member_ids=[member_id], now=now)
    assert scheduled == [6]  # one run, a second after the five-second window
    assert LedgerLogCheckpoint.objects.count() == before
    scheduled.elapse()
    assert LedgerLogCheckpoint.objects.count() == before + 1
    latest = LedgerLogCheckpoint.objects.order_by("-size").first()
    assert latest.size == LedgerEntry.objects.count()  # every paid entry is in it


def test_a_rolled_back_chunk_schedules_nothing(scheduled, django_capture_on_commit_callbacks):
    now = timezone.now()
    incident = _closed_outage(now, members=1)
    (chunk,) = incident_payout_plan(incident_id=incident.pk, threshold=timedelta(minutes=5))
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        incident_pay_members(incident_id=incident.pk, member_ids=chunk, now=now)
        transaction.set_rollback(True)
    assert scheduled == []


def test_the_minute_beat_still_publishes():
    entry = settings.CELERY_BEAT_SCHEDULE["publish-ledger-head"]
    assert entry["task"] == "compensation.tasks.publish_ledger_head"
    assert entry["schedule"] == 60.0
