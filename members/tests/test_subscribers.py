"""Status updates by email without an account (Statuspage's model): double
opt-in, one-click unsubscribe (signed link and List-Unsubscribe), rate
limits and clear errors in both languages, through the notification outbox."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from compensation.models import IncidentKind, IncidentScope
from compensation.services.incidents import incident_declare
from members.models import EmailStatus, EmailSubscriber, Notification, NotificationKind
from members.services.subscribers import PER_CLIENT_PER_HOUR

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from kamen_portal.celery import app

    app.conf.task_always_eager = True
    cache.clear()
    yield
    app.conf.task_always_eager = False


def _subscribe(client, email, language="en"):
    client.cookies["django_language"] = language
    return client.post("/status/subscribe/", {"email": email})


def _link(message, path):
    return re.search(rf"https?://[^\s\"<>]+{path}[^\s\"<>]+", message.body).group(0)


def _local(url):
    return re.sub(r"^https?://[^/]+", "", url)


def _declare(title="Shanghai down"):
    now = timezone.now()
    return incident_declare(
        kind=IncidentKind.OUTAGE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=now - timedelta(minutes=10),
        ended_at=None,
        ratio=None,
        title_zh=title,
        title_en=title,
        actor=None,
        now=now,
    )


def test_nothing_but_the_confirmation_is_sent_until_the_link_is_followed(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _subscribe(client, "Reader@Example.COM")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    confirm = mail.outbox[0]
    assert confirm.to == ["Reader@example.com"]
    assert "Confirm your subscription" in confirm.subject
    subscriber = EmailSubscriber.objects.get()
    assert subscriber.confirmed_at is None and subscriber.language == "en"

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _declare()
    assert mail.outbox == []  # pending: not a subscriber yet

    url = _local(_link(confirm, "/status/subscription/confirm/"))
    asked = client.get(url)
    assert asked.status_code == 200 and 'data-testid="confirm"' in asked.content.decode()
    EmailSubscriber.objects.get(confirmed_at__isnull=True)  # a GET confirms nothing
    done = client.post(url)
    assert 'data-testid="confirmed"' in done.content.decode()
    assert EmailSubscriber.objects.get().is_active


def _confirmed(client, django_capture_on_commit_callbacks, email="r@example.com", language="en"):
    with django_capture_on_commit_callbacks(execute=True):
        _subscribe(client, email, language)
    client.post(_local(_link(mail.outbox[-1], "/status/subscription/confirm/")))
    mail.outbox.clear()


def test_a_confirmed_subscriber_gets_incidents_and_leaves_in_one_click(
    client, django_capture_on_commit_callbacks
):
    _confirmed(client, django_capture_on_commit_callbacks, language="zh-hans")
    with django_capture_on_commit_callbacks(execute=True):
        _declare("上海节点故障")
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["r@example.com"]
    assert "上海节点故障" in notice.subject + notice.body
    header = notice.extra_headers["List-Unsubscribe"]
    assert notice.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = _local(header.strip("<>"))
    assert unsubscribe.startswith("/status/subscription/unsubscribe/")
    assert _local(_link(notice, "/status/subscription/unsubscribe/")) == unsubscribe
    row = Notification.objects.get(subscriber__isnull=False, kind=NotificationKind.STATUS_NOTICE)
    assert row.user_id is None and not row.in_inbox and row.email_status == EmailStatus.SENT

    # RFC 8058: the mail client POSTs without a session or CSRF token.
    client.logout()
    client.handler.enforce_csrf_checks = True
    response = client.post(unsubscribe, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert EmailSubscriber.objects.get().unsubscribed_at is not None
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _declare("again")
    assert mail.outbox == []


def test_forged_and_expired_links_are_refused(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _subscribe(client, "r@example.com")
    url = _local(_link(mail.outbox[0], "/status/subscription/confirm/"))
    assert client.post(url[:-3] + "xx/").status_code == 404
    assert client.post("/status/subscription/unsubscribe/nope/").status_code == 404
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert client.post(url).status_code == 404
    assert EmailSubscriber.objects.get().confirmed_at is None


@pytest.mark.parametrize(
    ("language", "invalid", "limited"),
    [
        ("en", "Enter a valid email address", "Too many subscription requests"),
        ("zh-hans", "请输入有效的电子邮件地址", "订阅请求过于频繁"),
    ],
)
def test_errors_are_clear_in_both_languages(
    client, language, invalid, limited, django_capture_on_commit_callbacks
):
    bad = _subscribe(client, "not an address", language)
    assert bad.status_code == 400
    assert invalid in bad.content.decode()
    assert 'data-testid="subscribe-error"' in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert _subscribe(client, "r@example.com", language).status_code == 302
        again = _subscribe(client, "r@example.com", language)
    # One confirmation per address per ten minutes: no inbox flooding.
    assert again.status_code == 429 and limited in again.content.decode()
    assert int(again["Retry-After"]) > 0
    assert len(mail.outbox) == 1


def test_one_client_cannot_subscribe_address_after_address(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(PER_CLIENT_PER_HOUR):
            assert _subscribe(client, f"r{n}@example.com").status_code == 302
        response = _subscribe(client, "one-more@example.com")
    assert response.status_code == 429
    assert not EmailSubscriber.objects.filter(email="one-more@example.com").exists()


def test_the_answer_does_not_tell_whether_an_address_is_subscribed(
    client, django_capture_on_commit_callbacks
):
    _confirmed(client, django_capture_on_commit_callbacks)
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        known = _subscribe(client, "r@example.com")
        new = _subscribe(client, "new@example.com")
    assert known.status_code == new.status_code == 302
    assert known["Location"] == new["Location"]
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
