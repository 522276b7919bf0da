"""Broker down when the action commits: the email still goes out, once.
Real PostgreSQL, a throwaway redis-server stopped and started, a real worker."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from members.models import EmailStatus, Notification, NotificationKind
from members.services.delivery import notification_relay
from members.services.notify import Message, notify_many
from members.tests.factories import MemberFactory
from tests.workers import reset_broker_connections, start_worker, stop_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_broker_down_at_commit_is_delivered_later_exactly_once(broker, tmp_path):
    member = MemberFactory().member
    broker.stop()
    with transaction.atomic():  # commits here; the enqueue after commit fails
        notify_many(
            messages=[
                Message(
                    kind=NotificationKind.CREDITED,
                    dedupe_key="outage-test",
                    member_id=member.pk,
                    render=lambda: ("12 minutes credited", "body", "/my/compensation/"),
                )
            ],
            now=timezone.now(),
        )
    notification = Notification.objects.get()
    assert notification.email_status == EmailStatus.PENDING  # recorded, not lost

    broker.start()
    reset_broker_connections()
    later = timezone.now() + timedelta(minutes=2)
    assert notification_relay(now=later) == 1
    assert notification_relay(now=later) == 1  # relayed twice: still one email
    outbox = tmp_path / "mail"
    db = connection.settings_dict
    worker = start_worker(
        tmp_path / "worker.log",
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=broker.url,
        # Four slashes: django-environ strips one from the path.
        EMAIL_URL=f"filemail:///{outbox}",
    )
    try:
        sent = wait_until(lambda: Notification.objects.get().email_status == EmailStatus.SENT)
        assert sent, (tmp_path / "worker.log").read_text()[-3000:]
        wait_until(lambda: False, timeout=1.5)  # let the duplicate task run too
    finally:
        stop_worker(worker)
    messages = "".join(p.read_text() for p in outbox.iterdir())
    assert messages.count(f"To: {member.user.email}") == 1
