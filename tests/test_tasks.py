"""The Celery task modules: each task is a thin, id-taking caller of a
service, and running it twice changes nothing more than running it once
(acks are late: a redelivered task runs again)."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from appeals import tasks as appeal_tasks
from compensation import tasks as compensation_tasks
from compensation.models import (
    Disconnect,
    DisconnectStatus,
    Incident,
    IncidentKind,
    IncidentScope,
    IncidentStatus,
    LedgerCheckpoint,
    LedgerEntry,
)
from compensation.services.incidents import incident_declare
from compensation.services.nodes import node_create
from kamen_portal.celery import app
from members import tasks as member_tasks
from members.models import DataExport, EmailStatus, ExportStatus, Notification, NotificationKind
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _twice(task, *args):
    task(*args)
    task(*args)


def test_compensating_a_closed_disconnect_twice_credits_once():
    now = timezone.now()
    member = MemberFactory(membership__expires_at=now + timedelta(days=3)).member
    node, _token = node_create(name="n1", now=now)
    disconnect = Disconnect.objects.create(
        member=member,
        node=node,
        session_id="s1",
        started_at=now - timedelta(minutes=30),
        ended_at=now - timedelta(minutes=18),
        status=DisconnectStatus.CLOSED,
        detected_at=now - timedelta(minutes=25),
    )
    _twice(compensation_tasks.compensate_disconnect, disconnect.pk)
    assert list(
        LedgerEntry.objects.exclude(kind="opening")
        .filter(member=member)
        .values_list("minutes", flat=True)
    ) == [12]


def test_an_incident_payout_and_its_notices_run_twice_once(django_capture_on_commit_callbacks):
    now = timezone.now()
    member = MemberFactory(membership__expires_at=now + timedelta(days=3)).member
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_declare(
            kind=IncidentKind.OUTAGE,
            scope=IncidentScope.ALL,
            node_ids=[],
            started_at=now - timedelta(minutes=40),
            ended_at=now - timedelta(minutes=10),
            ratio=None,
            title_zh="故障",
            title_en="Outage",
            actor=None,
            now=now,
        )
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.CLOSED
    _twice(compensation_tasks.pay_incident, incident.pk)
    assert list(
        LedgerEntry.objects.exclude(kind="opening")
        .filter(member=member)
        .values_list("minutes", flat=True)
    ) == [30]
    _twice(compensation_tasks.notify_incident, incident.pk, "resolved")
    assert (
        Notification.objects.filter(
            user=member.user, kind=NotificationKind.INCIDENT_RESOLVED
        ).count()
        == 1
    )


def test_publishing_the_head_and_a_detection_pass_are_safe_to_repeat():
    compensation_tasks.detect_disconnects()
    compensation_tasks.detect_disconnects()
    before = LedgerCheckpoint.objects.count()
    compensation_tasks.publish_ledger_head()
    assert LedgerCheckpoint.objects.count() == before + 1


def test_member_tasks_mark_liveness_relay_and_build_exports():
    member_tasks.record_worker_heartbeat()
    assert cache.get(member_tasks.WORKER_HEARTBEAT_KEY)

    user = MemberFactory().member.user
    old = timezone.now() - timedelta(minutes=5)
    Notification.objects.create(
        user=user,
        kind=NotificationKind.CREDITED,
        dedupe_key=f"t:{uuid.uuid4()}",
        title="t",
        body="b",
        created_at=old,
        email_status=EmailStatus.PENDING,
    )
    _twice(member_tasks.relay_notifications)
    assert len(mail.outbox) == 1  # relayed once, not twice

    export = DataExport.objects.create(user=user, requested_at=timezone.now())
    _twice(member_tasks.build_export, export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.READY
    member_tasks.sweep_exports()
    member_tasks.expire_exports()
    assert DataExport.objects.get(pk=export.pk).status == ExportStatus.READY  # not expired yet


def test_appeal_tasks_remind_and_digest_once():
    from io import StringIO

    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from members.tests.factories import StaffFactory

    call_command("sync_staff_groups", stdout=StringIO())
    staff = StaffFactory(email="rev@example.com")
    staff.groups.add(Group.objects.get(name="Reviewers"))
    now = timezone.now()
    incident_declare(
        kind=IncidentKind.OUTAGE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=now - timedelta(minutes=40),
        ended_at=None,
        ratio=None,
        title_zh="故障",
        title_en="Outage",
        actor=None,
        now=now,
    )
    _twice(appeal_tasks.remind_appeal_windows)
    _twice(appeal_tasks.send_staff_digest)
    digests = Notification.objects.filter(kind=NotificationKind.STAFF_DIGEST)
    assert list(digests.values_list("user__email", flat=True)) == ["rev@example.com"]
