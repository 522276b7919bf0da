from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from appeals.reminders import appeal_window_reminders, staff_digest
from compensation.models import Disconnect, Node
from compensation.services.incidents import incident_declare
from compensation.tests.conftest import T0
from members.models import Notification, NotificationKind
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=1)


def _disconnect(member, *, ended_ago_h, outcome="capped"):
    node, _ = Node.objects.get_or_create(
        name="n1", defaults={"token_hash": "h" * 64, "token_prefix": "kmn_h"}
    )
    end = NOW - timedelta(hours=ended_ago_h)
    return Disconnect.objects.create(
        member=member,
        node=node,
        session_id=f"s{ended_ago_h}",
        started_at=end - timedelta(minutes=20),
        ended_at=end,
        status="closed",
        detected_at=end,
        outcome=outcome,
    )


def test_window_closing_reminder_once_for_capped_unappealed_disconnects():
    member = MemberFactory(membership__expires_at=NOW + timedelta(days=9)).member
    due = _disconnect(member, ended_ago_h=20)  # deadline in 4 h: inside the 6 h reminder
    _disconnect(member, ended_ago_h=10)  # deadline in 14 h: not yet
    _disconnect(member, ended_ago_h=30)  # already closed
    _disconnect(member, ended_ago_h=19, outcome="credited")  # fully paid: nothing to appeal
    assert appeal_window_reminders(now=NOW) == 1
    assert appeal_window_reminders(now=NOW + timedelta(minutes=10)) == 1  # still due, but
    notes = Notification.objects.filter(kind=NotificationKind.APPEAL_WINDOW_CLOSING)
    assert notes.count() == 1  # deduplicated: one reminder per disconnect
    assert str(due.public_id) in notes.get().url


def test_no_reminder_once_appealed():
    from appeals.models import Appeal

    member = MemberFactory(membership__expires_at=NOW + timedelta(days=9)).member
    disconnect = _disconnect(member, ended_ago_h=20)
    Appeal.objects.create(
        member=member,
        disconnect=disconnect,
        claimed_start=disconnect.started_at,
        claimed_end=disconnect.ended_at,
        description="x",
        deadline=NOW,
        submission_token="00000000-0000-0000-0000-000000000001",
        sla_due_at=NOW,
        created_at=NOW,
    )
    assert appeal_window_reminders(now=NOW) == 0


def test_declared_incident_notifies_everyone_affected_then_resolution(
    django_capture_on_commit_callbacks,
):
    from kamen_portal.celery import app

    members = [
        MemberFactory(membership__expires_at=NOW + timedelta(days=9)).member for _ in range(4)
    ]
    lapsed = MemberFactory(membership__expires_at=T0 - timedelta(days=9)).member
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            incident = incident_declare(
                kind="maintenance",
                scope="all",
                node_ids=[],
                started_at=NOW - timedelta(hours=1),
                ended_at=None,
                ratio=None,
                title_zh="机房维护",
                title_en="Maintenance",
                actor=None,
                now=NOW,
            )
        declared = Notification.objects.filter(kind=NotificationKind.INCIDENT_DECLARED)
        assert sorted(declared.values_list("user_id", flat=True)) == sorted(
            m.user_id for m in members
        )
        assert not declared.filter(user_id=lapsed.user_id).exists()
        assert "机房维护" in declared.first().title
        from compensation.services.incidents import incident_close

        with django_capture_on_commit_callbacks(execute=True):
            incident_close(incident=incident, ended_at=NOW, now=NOW)
    finally:
        app.conf.task_always_eager = False
    assert Notification.objects.filter(kind=NotificationKind.INCIDENT_RESOLVED).count() == 4


def test_staff_digest_reaches_reviewers_supervisors_and_operators(
    django_capture_on_commit_callbacks,
):
    from kamen_portal.celery import app

    call_command("seed_demo", stdout=StringIO())
    incident_declare(
        kind="outage",
        scope="all",
        node_ids=[],
        started_at=NOW - timedelta(hours=2),
        ended_at=None,
        ratio=None,
        title_zh="故障",
        title_en="Outage",
        actor=None,
        now=NOW,
    )
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert staff_digest(now=NOW) == 4
            staff_digest(now=NOW + timedelta(hours=1))  # same day: not again
    finally:
        app.conf.task_always_eager = False
    assert Notification.objects.filter(kind=NotificationKind.STAFF_DIGEST).count() == 4
    assert set(
        Notification.objects.filter(kind=NotificationKind.STAFF_DIGEST).values_list(
            "user__email", flat=True
        )
    ) == {
        "reviewer@example.com",
        "supervisor@example.com",
        "supervisor2@example.com",
        "operator@example.com",
    }
    assert sorted(m.to[0] for m in mail.outbox) == [
        "operator@example.com",
        "reviewer@example.com",
        "supervisor2@example.com",
        "supervisor@example.com",
    ]
