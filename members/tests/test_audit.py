"""The staff audit trail: who, when, what, before -> after, client address;
append-only; readable by supervisors only."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from compensation.models import MembershipAdjustment, Node, Policy
from compensation.services.nodes import node_create
from members.models import EmailStatus, Notification, NotificationKind, User
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


def _staff(role, email):
    call_command("sync_staff_groups", stdout=StringIO())
    user = StaffFactory(email=email)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def _entries_for(instance):
    return LogEntry.objects.get_for_object(instance).order_by("timestamp", "pk")


def test_a_token_rotation_is_recorded_with_actor_before_after_and_the_real_client_ip(client):
    operator = _staff("Operators", "ops@example.com")
    node, _token = node_create(name="sh-node-01", now=timezone.now())
    old_prefix = node.token_prefix
    staff_login(client, operator)
    client.post(
        reverse("admin:compensation_node_changelist"),
        {"action": "rotate_tokens", "_selected_action": [node.pk]},
        REMOTE_ADDR="203.0.113.7",
        # Written by the client: with no trusted proxy it must be ignored.
        HTTP_X_FORWARDED_FOR="198.51.100.66",
    )
    node.refresh_from_db()
    entry = _entries_for(node).filter(action=LogEntry.Action.UPDATE).last()
    assert entry.actor == operator
    assert entry.remote_addr == "203.0.113.7"
    assert entry.changes["token_prefix"] == [old_prefix, node.token_prefix]
    assert "token_hash" not in entry.changes  # secrets stay out of the trail


def test_adjustments_decisions_policy_and_retries_are_on_the_trail(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    supervisor = _staff("Supervisors", "sup@example.com")
    operator = _staff("Operators", "ops@example.com")
    member = MemberFactory(membership__expires_at=timezone.now() + timedelta(days=3)).member

    staff_login(client, supervisor)
    client.post(
        reverse("admin:compensation_membershipadjustment_add"),
        {"member_no": member.member_no, "kind": "goodwill", "minutes": "15", "reason": "Sorry"},
    )
    adjustment = MembershipAdjustment.objects.get()
    created = _entries_for(adjustment).first()
    assert created.action == LogEntry.Action.CREATE and created.actor == supervisor
    moved = _entries_for(member).filter(action=LogEntry.Action.UPDATE).last()
    assert moved.actor == supervisor and "expires_at" in moved.changes

    staff_login(client, operator)
    add = reverse("admin:compensation_policy_add")
    form = client.get(add).context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    data.update(threshold_minutes=7, change_note="seven", lapsed_extends_from_credit_time="on")
    client.post(add, data)
    policy = Policy.objects.order_by("-version").first()
    assert policy.threshold_minutes == 7
    assert _entries_for(policy).get().actor == operator

    failed = Notification.objects.create(
        user=member.user,
        kind=NotificationKind.CREDITED,
        dedupe_key=f"t:{uuid.uuid4()}",
        title="t",
        body="b",
        created_at=timezone.now(),
        email_status=EmailStatus.FAILED,
    )
    client.post(
        reverse("admin:members_notification_changelist"),
        {"action": "retry_failed", "_selected_action": [failed.pk]},
    )
    retry = _entries_for(failed).get()
    assert retry.actor == operator
    assert retry.changes == {"email_status": ["failed", "pending"]}


def test_supervisors_read_the_trail_and_reviewers_cannot(client):
    node_create(name="n1", now=timezone.now())
    staff_login(client, _staff("Supervisors", "sup@example.com"))
    page = client.get(reverse("admin:auditlog_logentry_changelist"))
    assert page.status_code == 200 and "n1" in page.content.decode()
    entry = LogEntry.objects.first()
    assert (
        client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk])).status_code == 403
    )
    staff_login(client, _staff("Reviewers", "rev@example.com"))
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403


@pytest.mark.postgres
def test_the_database_refuses_to_rewrite_or_delete_the_trail():
    node, _ = node_create(name="n1", now=timezone.now())
    entry = LogEntry.objects.get_for_object(node).get()
    for statement in (
        "UPDATE auditlog_logentry SET changes = '{}' WHERE id = %s",
        "DELETE FROM auditlog_logentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [entry.pk])
    assert LogEntry.objects.filter(pk=entry.pk).exists()
    assert Node.objects.filter(pk=node.pk).exists()
