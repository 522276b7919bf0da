"""The notification service: channels, preferences, inbox, unsubscribe,
delivery exactly once, retries, the outbox relay."""

from datetime import timedelta
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.urls import reverse
from django.utils import timezone

from members.models import EmailStatus, Notification, NotificationKind, NotificationPreference
from members.services.delivery import (
    TransientEmailError,
    backoff_ceiling,
    email_max_attempts,
    notification_email_send,
    notification_emails_send,
    notification_relay,
    unsubscribe_token,
)
from members.services.notify import Message, notify_many
from members.services.preferences import preferences_set
from members.tests.factories import MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_celery():
    from kamen_portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _message(user=None, member=None, kind=NotificationKind.CREDITED, key="k1"):
    from django.utils.translation import gettext as _

    return Message(
        kind=kind,
        dedupe_key=key,
        member_id=member.pk if member else None,
        user_id=user.pk if user else None,
        render=lambda: (_("Dashboard"), "body text", "/my/compensation/"),
    )


def _notify(*messages, capture=None):
    now = timezone.now()
    if capture is None:
        return notify_many(messages=list(messages), now=now)
    with capture(execute=True):
        return notify_many(messages=list(messages), now=now)


def test_email_has_html_text_and_one_click_unsubscribe(django_capture_on_commit_callbacks):
    member = MemberFactory().member
    _notify(_message(member=member), capture=django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.subject == "会员中心"  # rendered in the member's language
    assert email.alternatives and "会员中心" in email.alternatives[0][0]
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in email.extra_headers["List-Unsubscribe"]
    assert email.extra_headers["Message-ID"].startswith("<notification-")
    assert Notification.objects.get().email_status == EmailStatus.SENT


def test_preferences_choose_the_channels(django_capture_on_commit_callbacks):
    member = MemberFactory().member
    preferences_set(user=member.user, kind=NotificationKind.CREDITED, email=False, inbox=True)
    preferences_set(user=member.user, kind=NotificationKind.COUPON_ISSUED, email=True, inbox=False)
    _notify(
        _message(member=member, key="a"),
        _message(member=member, kind=NotificationKind.COUPON_ISSUED, key="b"),
        capture=django_capture_on_commit_callbacks,
    )
    credited = Notification.objects.get(dedupe_key="a")
    coupon = Notification.objects.get(dedupe_key="b")
    assert (credited.email_status, credited.in_inbox) == (EmailStatus.SKIPPED, True)
    assert (coupon.email_status, coupon.in_inbox) == (EmailStatus.SENT, False)
    assert len(mail.outbox) == 1


def test_disconnect_notices_default_to_inbox_only():
    member = MemberFactory().member
    _notify(_message(member=member, kind=NotificationKind.DISCONNECT_DETECTED))
    assert Notification.objects.get().email_status == EmailStatus.SKIPPED


def test_security_notices_are_always_emailed(django_capture_on_commit_callbacks):
    member = MemberFactory().member
    preferences_set(user=member.user, kind=NotificationKind.SECURITY, email=False)
    assert NotificationPreference.objects.get().email is True
    _notify(
        _message(user=member.user, kind=NotificationKind.SECURITY),
        capture=django_capture_on_commit_callbacks,
    )
    assert len(mail.outbox) == 1
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


def test_staff_get_notifications_by_user(django_capture_on_commit_callbacks):
    staff = StaffFactory()
    _notify(
        _message(user=staff, kind=NotificationKind.STAFF_DIGEST),
        capture=django_capture_on_commit_callbacks,
    )
    assert mail.outbox[0].to == [staff.email]


def test_unsubscribe_link_works_without_login_and_cannot_be_forged(client):
    member = MemberFactory().member
    token = unsubscribe_token(user_id=member.user.pk, kind=NotificationKind.CREDITED)
    page = client.get(reverse("members:unsubscribe", args=[token]))
    assert page.status_code == 200
    assert not NotificationPreference.objects.exists()  # GET only asks
    client.post(reverse("members:unsubscribe", args=[token]), {"List-Unsubscribe": "One-Click"})
    assert NotificationPreference.objects.get(user=member.user, kind="credited").email is False
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert client.post(reverse("members:unsubscribe", args=[forged])).status_code == 404
    other = MemberFactory().member
    tampered = (
        unsubscribe_token(user_id=other.user.pk, kind="credited").split(":")[0]
        + ":"
        + token.split(":", 1)[1]
    )
    assert client.post(reverse("members:unsubscribe", args=[tampered])).status_code == 404
    assert not NotificationPreference.objects.filter(user=other.user).exists()


def test_inbox_shows_only_my_notifications_and_marks_them_read(client):
    mine, theirs = MemberFactory(), MemberFactory()
    _notify(
        _message(member=mine.member, key="m1"),
        _message(member=mine.member, key="m2"),
        _message(member=theirs.member, key="t1"),
    )
    client.force_login(mine)
    page = client.get(reverse("members:inbox"))
    assert [n.dedupe_key for n in page.context["page"].object_list] == ["m2", "m1"]
    assert 'data-testid="unread-count">2<' in page.content.decode()
    theirs_id = Notification.objects.get(dedupe_key="t1").pk
    client.post(reverse("members:inbox-read", args=[theirs_id]))
    assert Notification.objects.get(pk=theirs_id).read_at is None
    first = Notification.objects.get(dedupe_key="m1").pk
    client.post(reverse("members:inbox-read", args=[first]))
    assert Notification.objects.get(pk=first).read_at is not None
    client.post(reverse("members:inbox-read-all"))
    assert not Notification.objects.filter(user=mine, read_at__isnull=True).exists()
    assert Notification.objects.get(dedupe_key="t1").read_at is None


def test_reminder_settings_page_saves_choices(client):
    member = MemberFactory()
    client.force_login(member)
    page = client.get(reverse("members:notification-settings"))
    assert page.status_code == 200
    client.post(
        reverse("members:notification-settings"),
        {"inbox:credited": "on", "email:coupon_issued": "on"},
    )
    pref = NotificationPreference.objects.get(user=member, kind="credited")
    assert (pref.email, pref.inbox) == (False, True)
    assert NotificationPreference.objects.get(user=member, kind="security").email is True


class FailingBackend:
    calls = 0

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        FailingBackend.calls += 1
        raise SMTPServerDisconnected("connection lost")


def test_smtp_failure_retries_with_backoff_then_fails_visibly(settings):
    # A short window, so the whole schedule is a few attempts.
    settings.EMAIL_RETRY_HOURS = 1
    settings.EMAIL_RETRY_MAX_DELAY = 600
    settings.EMAIL_BACKEND = "members.tests.test_notifications.FailingBackend"
    member = MemberFactory().member
    _notify(_message(member=member))
    notification = Notification.objects.get()
    attempts = email_max_attempts()
    # 15 + 30 + 60 + 120 + 240 + 300 * n >= 3,600 s at the shortest back-offs.
    assert attempts == 6 + 11
    delays = []
    now = timezone.now()
    for _attempt in range(attempts - 1):
        with pytest.raises(TransientEmailError) as info:
            notification_email_send(notification_id=notification.pk, now=now)
        delays.append(info.value.retry_in)
        notification.refresh_from_db()
        # The next attempt is on record, for the relay.
        assert notification.email_retry_at == now + timedelta(seconds=info.value.retry_in)
    assert notification_email_send(notification_id=notification.pk, now=now) is False
    notification.refresh_from_db()
    assert notification.email_status == EmailStatus.FAILED
    assert notification.email_attempts == attempts
    assert notification.email_retry_at is None
    assert "connection lost" in notification.email_error
    # Exponential with jitter: attempt n waits between half and all of
    # 30 s * 2^(n-1), never more than the cap.
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(30 * 2 ** (attempt - 1), 600)
        assert ceiling / 2 <= delay <= ceiling
    # Altogether at least the window.
    assert sum(delays) >= 3600


def test_the_default_schedule_survives_a_day_long_smtp_outage(settings):
    assert settings.EMAIL_RETRY_HOURS == 24 and settings.EMAIL_RETRY_MAX_DELAY == 900
    attempts = email_max_attempts()
    shortest = sum(backoff_ceiling(n) / 2 for n in range(1, attempts))
    assert shortest >= 24 * 3600
    assert shortest - backoff_ceiling(attempts - 1) / 2 < 24 * 3600  # no more than needed


def test_relay_sends_what_was_never_enqueued_and_reclaims_dead_workers_claims(
    django_capture_on_commit_callbacks,
):
    from kamen_portal.celery import app

    member = MemberFactory().member
    _notify(_message(member=member, key="lost"))  # on_commit never ran: broker "down"
    stuck = Notification.objects.get()
    now = timezone.now()
    app.conf.task_always_eager = True
    try:
        assert notification_relay(now=now) == 0  # too fresh to relay
        assert notification_relay(now=now + timedelta(minutes=2)) == 1
        assert len(mail.outbox) == 1
        assert notification_relay(now=now + timedelta(minutes=3)) == 0  # sent: nothing again
        # A worker claimed another one and died before sending.
        _notify(_message(member=member, key="claimed"))
        claimed = Notification.objects.get(dedupe_key="claimed")
        Notification.objects.filter(pk=claimed.pk).update(
            email_status=EmailStatus.SENDING, email_claimed_at=now
        )
        notification_relay(now=now + timedelta(minutes=5))
        assert Notification.objects.get(pk=claimed.pk).email_status == EmailStatus.SENDING
        notification_relay(now=now + timedelta(minutes=12))
    finally:
        app.conf.task_always_eager = False
    assert Notification.objects.get(pk=claimed.pk).email_status == EmailStatus.SENT
    assert Notification.objects.get(pk=stuck.pk).email_status == EmailStatus.SENT
    assert len(mail.outbox) == 2


def test_inbox_shows_a_notice_in_the_readers_current_language(client):
    """Written while the member read Chinese; read after switching to English."""
    from members.services.accounts import member_set_language

    member = MemberFactory().member
    member_set_language(profile=member, language="zh-hans")
    _notify(_message(member=member))
    row = Notification.objects.get(user=member.user)
    assert row.title != "Dashboard"  # recorded in Chinese
    client.force_login(member.user)
    chinese = client.get(reverse("members:inbox")).content.decode()
    assert row.texts["zh-hans"][0] in chinese
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(reverse("members:inbox")).content.decode()
    assert "Dashboard" in english
    assert row.texts["zh-hans"][0] not in english


def test_relay_resends_a_failed_email_whose_retry_was_lost():
    """A failed send is retried by a countdown task; if the worker holding
    that task dies, the broker only returns it hours later. The relay sends
    it once the retry is clearly overdue, not before."""
    from kamen_portal.celery import app

    member = MemberFactory().member
    _notify(_message(member=member, key="retry-lost"))
    row = Notification.objects.get()
    # The first attempt failed (SMTP down); its retry, due in 30 s, was lost.
    now = timezone.now()
    Notification.objects.filter(pk=row.pk).update(
        email_attempts=1, email_error="refused", email_retry_at=now + timedelta(seconds=30)
    )
    app.conf.task_always_eager = True
    try:
        assert notification_relay(now=now + timedelta(seconds=60)) == 0  # may still come
        assert notification_relay(now=now + timedelta(seconds=89)) == 0
        assert notification_relay(now=now + timedelta(seconds=91)) == 1
    finally:
        app.conf.task_always_eager = False
    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENT
    assert row.email_attempts == 2
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivered_email_is_recorded_across_a_database_restart(monkeypatch):
    """The SMTP server took the message; the database was restarting when
    the outcome was written. The write is retried, so the row says "sent"
    (not "sending", which the relay would re-send after the lease)."""
    from django.db.models import QuerySet
    from django.db.utils import OperationalError

    from members.services import delivery

    member = MemberFactory().member
    _notify(_message(member=member, key="restart"))  # no test transaction: sent at once
    row = Notification.objects.get()
    Notification.objects.filter(pk=row.pk).update(email_status=EmailStatus.PENDING)
    mail.outbox.clear()
    real_update, failures = QuerySet.update, []

    def flaky_update(self, **fields):
        if fields.get("email_status") == EmailStatus.SENT and not failures:
            failures.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return real_update(self, **fields)

    monkeypatch.setattr(QuerySet, "update", flaky_update)
    monkeypatch.setattr(delivery.time, "sleep", lambda s: None)
    assert delivery.notification_email_send(notification_id=row.pk, now=timezone.now())
    row.refresh_from_db()
    assert failures == [1]
    assert row.email_status == EmailStatus.SENT
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_is_given_back_when_the_database_goes_away_before_sending(monkeypatch):
    from django.db.models import QuerySet
    from django.db.utils import OperationalError

    from members.services import delivery

    member = MemberFactory().member
    _notify(_message(member=member, key="gone"))
    row = Notification.objects.get()
    Notification.objects.filter(pk=row.pk).update(email_status=EmailStatus.PENDING)
    mail.outbox.clear()
    real_get = QuerySet.get

    def gone(self, *args, **kwargs):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(QuerySet, "get", gone)
    monkeypatch.setattr(delivery.time, "sleep", lambda s: None)
    with pytest.raises(OperationalError):
        delivery.notification_email_send(notification_id=row.pk, now=timezone.now())
    monkeypatch.setattr(QuerySet, "get", real_get)
    row.refresh_from_db()
    assert row.email_status == EmailStatus.PENDING  # not "sending" for the lease
    assert mail.outbox == []


def test_the_attempt_count_fits_its_column_whatever_the_window(settings):
    settings.EMAIL_RETRY_HOURS = 100_000
    settings.EMAIL_RETRY_MAX_DELAY = 30
    assert email_max_attempts() == 30_000 < 32_767


class FlakyBackend(locmem.EmailBackend):
    """Delivers until ``fail_from`` messages went out, then refuses the
    next ``failures`` sends; counts the connections made."""

    fail_from = 0
    failures = 0
    connections = 0

    def __init__(self, *args, **kwargs):
        FlakyBackend.connections += 1
        super().__init__(*args, **kwargs)

    def send_messages(self, messages):
        if len(mail.outbox) >= FlakyBackend.fail_from and FlakyBackend.failures > 0:
            FlakyBackend.failures -= 1
            raise SMTPServerDisconnected("connection lost")
        return super().send_messages(messages)


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = "members.tests.test_notifications.FlakyBackend"
    FlakyBackend.fail_from, FlakyBackend.failures, FlakyBackend.connections = 0, 0, 0
    return FlakyBackend


def _pending(n):
    member = MemberFactory().member
    for i in range(n):
        _notify(_message(member=member, key=f"batch-{i}"))  # not sent: no commit
    return list(Notification.objects.order_by("pk").values_list("pk", flat=True))


def _delivered_ids():
    return sorted(
        int(m.extra_headers["Message-ID"].split("-")[1].split("@")[0]) for m in mail.outbox
    )


def test_a_batch_goes_over_one_connection_and_a_second_run_sends_nothing(flaky):
    ids = _pending(5)
    outcome = notification_emails_send(notification_ids=ids, now=timezone.now())
    assert outcome.sent == ids and not outcome.retry and not outcome.released
    assert flaky.connections == 1
    again = notification_emails_send(notification_ids=ids, now=timezone.now())
    assert again.sent == []
    assert _delivered_ids() == ids
    rows = Notification.objects.filter(pk__in=ids)
    assert {(r.email_status, r.email_attempts) for r in rows} == {(EmailStatus.SENT, 1)}


def test_an_smtp_failure_mid_batch_loses_no_mail_and_sends_none_twice(flaky):
    ids = _pending(6)
    flaky.fail_from, flaky.failures = 2, 2  # two delivered, then the server goes away
    now = timezone.now()
    outcome = notification_emails_send(notification_ids=ids, now=now)
    assert outcome.sent == ids[:2]
    assert sorted(outcome.retry) == ids[2:4]  # tried and failed: back-off on record
    assert outcome.released == ids[4:]  # never tried: given back, no attempt counted
    state = {
        r.pk: (r.email_status, r.email_attempts, r.email_retry_at is not None)
        for r in Notification.objects.filter(pk__in=ids)
    }
    assert [state[i] for i in ids] == [
        (EmailStatus.SENT, 1, False),
        (EmailStatus.SENT, 1, False),
        (EmailStatus.PENDING, 1, True),
        (EmailStatus.PENDING, 1, True),
        (EmailStatus.PENDING, 0, False),
        (EmailStatus.PENDING, 0, False),
    ]
    # The server is back: the whole batch again delivers only what is missing.
    notification_emails_send(notification_ids=ids, now=now)
    assert _delivered_ids() == ids
    assert set(Notification.objects.values_list("email_status", flat=True)) == {EmailStatus.SENT}


def test_one_refused_mail_does_not_stop_the_batch(flaky):
    ids = _pending(4)
    flaky.fail_from, flaky.failures = 1, 1
    outcome = notification_emails_send(notification_ids=ids, now=timezone.now())
    assert outcome.sent == [ids[0], *ids[2:]]
    assert list(outcome.retry) == [ids[1]] and outcome.released == []


def test_the_batch_task_retries_failures_and_the_untried_rest_each_once(flaky):
    from members.tasks import send_notification_emails

    ids = _pending(5)
    flaky.fail_from, flaky.failures = 1, 2
    # Eager: the retries run at once, after the server came back.
    send_notification_emails(ids)
    assert _delivered_ids() == ids
    assert set(Notification.objects.values_list("email_status", flat=True)) == {EmailStatus.SENT}


def test_a_row_another_sender_claimed_is_not_sent_again(flaky):
    ids = _pending(3)
    Notification.objects.filter(pk=ids[1]).update(
        email_status=EmailStatus.SENDING, email_claimed_at=timezone.now()
    )
    outcome = notification_emails_send(notification_ids=ids, now=timezone.now())
    assert outcome.sent == [ids[0], ids[2]]
    assert _delivered_ids() == [ids[0], ids[2]]
