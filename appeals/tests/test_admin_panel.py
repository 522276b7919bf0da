"""The reviewer's decision panel and the list reviewers work from."""

import zoneinfo
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from appeals.evidence import clean_uploads
from appeals.models import AppealStatus, ReasonTemplate
from appeals.services import appeal_suggestion
from appeals.tests.factories import upload
from compensation.models import Disconnect, DisconnectStatus, LedgerEntry, Node
from compensation.services.disconnects import disconnect_compensate
from members.models import User
from members.tests.factories import StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(db):
    call_command("seed_demo", stdout=StringIO())
    return User.objects.get(email="reviewer@example.com")


def _decide(client, appeal, **data):
    return client.post(reverse("admin:appeals_appeal_decide", args=[appeal.pk]), data)


def _detected(member, now, *, start_ago, end_ago):
    """A disconnect detection recorded (and credited) inside a claim."""
    node, _ = Node.objects.get_or_create(
        name="sh-node-07", defaults={"token_hash": "d" * 64, "token_prefix": "d"}
    )
    d = Disconnect.objects.create(
        member=member,
        node=node,
        session_id=f"panel-{start_ago}",
        started_at=now - timedelta(minutes=start_ago),
        ended_at=now - timedelta(minutes=end_ago),
        status=DisconnectStatus.CLOSED,
        detected_at=now - timedelta(minutes=end_ago - 1),
    )
    disconnect_compensate(disconnect_id=d.pk, now=now - timedelta(minutes=end_ago - 1))
    return d


def test_one_panel_is_the_only_way_to_decide(client, reviewer, file_appeal):
    appeal = file_appeal()
    staff_login(client, reviewer)
    page = client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).content.decode()
    panel = page.index('data-testid="decision-panel"')
    assert panel < page.index('id="appeal_form"')  # on top, before the long record
    # No one-click approval beside it, no action dropdown and no save below.
    assert 'data-testid="approve-suggested"' not in page
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert page.count('action="' + reverse("admin:appeals_appeal_decide", args=[appeal.pk])) == 1
    for value in ("approve", "reject", "request_info"):
        assert f'data-testid="decision-{value}"' in page
    assert 'name="message" required' in page


def test_nothing_recorded_and_no_log_suggests_zero_and_says_why(client, reviewer, file_appeal):
    appeal = file_appeal()  # a screenshot only; detection saw nothing
    assert appeal.suggested_minutes == 0
    staff_login(client, reviewer)
    page = client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).content.decode()
    basis = page[page.index('data-testid="suggestion-basis"') :]
    assert "检测在" in basis and "建议为 0" in basis  # says it recorded nothing, so 0
    assert 'value="0" data-testid="panel-minutes"' in page  # the credit field starts at 0


def test_a_detected_disconnect_is_the_basis_of_the_suggestion(
    client, reviewer, file_appeal, member, now
):
    _detected(member, now, start_ago=80, end_ago=70)  # 10 of the 30 claimed, already paid
    appeal = file_appeal(start_ago=90, end_ago=60)
    assert appeal.suggested_minutes == 20  # the 20 claimed minutes not yet paid
    staff_login(client, reviewer)
    page = client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).content.decode()
    basis = page[page.index('data-testid="suggestion-basis"') :]
    assert "sh-node-07" in basis and "已补偿" in basis


def test_a_log_that_shows_the_span_is_the_basis_when_detection_saw_nothing(
    member, now, file_appeal
):
    tz = zoneinfo.ZoneInfo(member.timezone)
    lines = "\n".join(
        f"{(now - timedelta(minutes=m)).astimezone(tz):%Y-%m-%d %H:%M:%S} reconnect failed"
        for m in (85, 75, 65)
    )
    log = SimpleUploadedFile("client.log", lines.encode(), content_type="text/plain")
    appeal = file_appeal(
        files=clean_uploads(screenshots=[upload()], logs=[log], require_screenshot=True)
    )
    suggestion = appeal_suggestion(appeal=appeal, now=now)
    assert appeal.suggested_minutes == suggestion.minutes == 20  # first to last log line
    assert suggestion.codes == ["log"] and "client.log" in suggestion.basis[0]


def test_every_decision_needs_a_reason_the_member_then_reads(client, reviewer, file_appeal, member):
    appeal = file_appeal()
    staff_login(client, reviewer)
    for decision in ("approve", "reject", "request_info"):
        response = _decide(client, appeal, decision=decision, minutes="30", message=" ")
        assert response.status_code == 302
        appeal.refresh_from_db()
        assert appeal.status == AppealStatus.SUBMITTED
        shown = [str(m) for m in get_messages(response.wsgi_request)]
        assert "每项决定都需要写明会员能看到的理由。" in shown
    before = member.expires_at
    response = _decide(
        client, appeal, decision="approve", minutes="30", message="截图显示 30 分钟无法连接。"
    )
    assert response["Location"] == reverse("admin:appeals_appeal_change", args=[appeal.pk])
    appeal.refresh_from_db()
    member.refresh_from_db()
    assert (appeal.status, appeal.credited_minutes) == (AppealStatus.APPROVED, 30)
    assert member.expires_at == before + timedelta(minutes=30)
    client.force_login(member.user)
    page = client.get(reverse("appeals:detail", args=[appeal.public_id])).content.decode()
    assert page.count("截图显示 30 分钟无法连接。") >= 2  # the decision and the timeline


def test_double_approve_pays_once(client, reviewer, file_appeal, member):
    appeal = file_appeal()
    staff_login(client, reviewer)
    for _ in range(2):
        _decide(client, appeal, decision="approve", minutes="30", message="Confirmed.")
    assert LedgerEntry.objects.filter(member=member).exclude(kind="opening").count() == 1
    appeal.refresh_from_db()
    assert appeal.credited_minutes == 30


def test_an_edited_credit_below_the_claim_is_a_partial_approval(client, reviewer, file_appeal):
    appeal = file_appeal()
    staff_login(client, reviewer)
    _decide(client, appeal, decision="approve", minutes="10", message="Only 10 minutes shown.")
    appeal.refresh_from_db()
    assert (appeal.status, appeal.credited_minutes) == (AppealStatus.PARTLY_APPROVED, 10)


def test_asking_for_more_reaches_the_member(client, reviewer, file_appeal):
    appeal = file_appeal()
    staff_login(client, reviewer)
    _decide(client, appeal, decision="request_info", message="请上传客户端日志。")
    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.INFO_REQUESTED
    client.force_login(appeal.member.user)
    assert "请上传客户端日志。" in client.get(f"/appeals/{appeal.public_id}/").content.decode()


def test_a_message_from_the_panel_reaches_the_member_and_decides_nothing(
    client, reviewer, file_appeal
):
    appeal = file_appeal()
    before = appeal.status
    staff_login(client, reviewer)
    _decide(client, appeal, decision="message", message="我们正在核对节点日志。")
    appeal.refresh_from_db()
    assert appeal.status == before and appeal.credited_minutes in (0, None)
    client.force_login(appeal.member.user)
    assert "我们正在核对节点日志。" in client.get(f"/appeals/{appeal.public_id}/").content.decode()


def test_reject_takes_a_template_as_its_reason(client, reviewer, file_appeal):
    template = ReasonTemplate.objects.create(
        title="no record", text_zh="记录中没有掉线。", text_en="No disconnect on record."
    )
    appeal = file_appeal()
    staff_login(client, reviewer)
    _decide(client, appeal, decision="reject", reason_template=template.pk, message="")
    appeal.refresh_from_db()
    assert (appeal.status, appeal.decision_reason) == (AppealStatus.REJECTED, "记录中没有掉线。")


def test_the_panel_refuses_without_permission_get_or_csrf(reviewer, file_appeal):
    appeal = file_appeal()
    url = reverse("admin:appeals_appeal_decide", args=[appeal.pk])
    viewer = StaffFactory(email="viewer@example.com")  # staff without decide_appeal
    client = Client()
    staff_login(client, viewer)
    data = {"decision": "approve", "minutes": "30", "message": "ok"}
    assert client.post(url, data).status_code == 403
    client = Client(enforce_csrf_checks=True)
    staff_login(client, reviewer)
    assert client.get(url).status_code == 405
    assert client.post(url, data).status_code == 403  # no CSRF token
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
