from datetime import timedelta

import pytest
from django.core import mail

from compensation.services.credit import compensation_credit
from compensation.tests.conftest import T0
from members.models import EmailStatus, Notification, NotificationKind
from members.services.delivery import notification_email_send
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=2)


def _credit(member, key="k"):
    return compensation_credit(
        member_id=member.pk,
        intervals=[(T0, T0 + timedelta(minutes=12))],
        source_kind="disconnect",
        source_ref=key,
        idempotency_key=key,
        now=NOW,
    )


def test_a_credit_is_announced_once_in_the_members_language(django_capture_on_commit_callbacks):
    member = MemberFactory(membership__expires_at=T0 + timedelta(days=3)).member
    with django_capture_on_commit_callbacks(execute=True):
        _credit(member)
        _credit(member)  # a retry
    notification = Notification.objects.get()
    assert notification.kind == NotificationKind.CREDITED
    assert "12" in notification.title and "分钟" in notification.title
    assert notification.email_status == EmailStatus.SENT
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [member.user.email]
    assert "/my/compensation/" in mail.outbox[0].body


def test_english_members_are_told_in_english(django_capture_on_commit_callbacks):
    member = MemberFactory(membership__expires_at=T0 + timedelta(days=3)).member
    member.language = "en"
    member.save()
    with django_capture_on_commit_callbacks(execute=True):
        _credit(member)
    assert Notification.objects.get().title == "12 minutes credited"


def test_the_email_task_run_twice_sends_one_email(django_capture_on_commit_callbacks):
    member = MemberFactory(membership__expires_at=T0 + timedelta(days=3)).member
    _credit(member)  # on_commit not executed: the email is still pending
    notification = Notification.objects.get()
    assert notification_email_send(notification_id=notification.pk, now=NOW) is True
    assert notification_email_send(notification_id=notification.pk, now=NOW) is False
    assert len(mail.outbox) == 1


def test_nothing_is_announced_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    from django.db import transaction

    member = MemberFactory(membership__expires_at=T0 + timedelta(days=3)).member
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _credit(member)
        raise RuntimeError("rolled back")
    assert not Notification.objects.exists()
    assert mail.outbox == []
