"""The reviewer's decision panel and the list reviewers work from."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from appeals.models import AppealStatus
from compensation.models import LedgerEntry
from members.models import User
from members.tests.factories import StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(db):
    call_command("seed_demo", stdout=StringIO())
    return User.objects.get(email="reviewer@example.com")


def test_one_click_approves_the_suggested_credit(client, reviewer, file_appeal, member):
    appeal = file_appeal()
    before = member.expires_at
    staff_login(client, reviewer)
    page = client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).content.decode()
    panel = page.index('data-testid="decision-panel"')
    assert panel < page.index('id="appeal_form"')  # on top, before the long form
    assert 'data-testid="approve-suggested"' in page
    url = reverse("admin:appeals_appeal_decide", args=[appeal.pk])
    response = client.post(url, {"decision": "approve"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:appeals_appeal_change", args=[appeal.pk])
    appeal.refresh_from_db()
    member.refresh_from_db()
    assert (appeal.status, appeal.credited_minutes) == (AppealStatus.APPROVED, 30)
    assert member.expires_at == before + timedelta(minutes=30)
    # A double click credits once and says the appeal moved on.
    client.post(url, {"decision": "approve"})
    assert LedgerEntry.objects.filter(member=member).exclude(kind="opening").count() == 1


def test_partly_approve_needs_a_reason_and_reject_takes_a_template(client, reviewer, file_appeal):
    appeal = file_appeal()
    staff_login(client, reviewer)
    url = reverse("admin:appeals_appeal_decide", args=[appeal.pk])
    client.post(url, {"decision": "partly_approve", "minutes": "10", "message": ""})
    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.SUBMITTED  # refused: no reason
    client.post(url, {"decision": "partly_approve", "minutes": "10", "message": "half of it"})
    appeal.refresh_from_db()
    assert (appeal.status, appeal.credited_minutes) == (AppealStatus.PARTLY_APPROVED, 10)


def test_the_panel_refuses_without_permission_get_or_csrf(reviewer, file_appeal):
    appeal = file_appeal()
    url = reverse("admin:appeals_appeal_decide", args=[appeal.pk])
    viewer = StaffFactory(email="viewer@example.com")  # staff without decide_appeal
    client = Client()
    staff_login(client, viewer)
    assert client.post(url, {"decision": "approve"}).status_code == 403
    client = Client(enforce_csrf_checks=True)
    staff_login(client, reviewer)
    assert client.get(url).status_code == 405
    assert client.post(url, {"decision": "approve"}).status_code == 403  # no CSRF token
    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.SUBMITTED


def test_the_list_shows_claimed_and_suggested_minutes_and_says_overdue_in_words(
    client, reviewer, file_appeal, now
):
    on_time = file_appeal(start_ago=90, end_ago=60)
    late = file_appeal(start_ago=300, end_ago=250)
    type(late).objects.filter(pk=late.pk).update(sla_due_at=now - timedelta(hours=1))
    staff_login(client, reviewer)
    with time_machine.travel(now, tick=False), timezone.override("UTC"):
        page = client.get(reverse("admin:appeals_appeal_changelist")).content.decode()
    # The words say it; the icon repeats them (no red ✗ meaning "not overdue").
    assert (
        page.count(
            'class="kamen-overdue"><img src="/static/admin/img/icon-alert.svg" alt=""> 已逾期'
        )
        == 1
    )
    assert page.count('icon-clock.svg" alt=""> 剩余') == 1
    assert "30 分钟" in page  # claimed and suggested minutes
    assert "icon-no.svg" not in page
    assert on_time.short_id in page
