"""Issue 21: the hand-over to staff becomes a request the member follows,
and "why less" names the reasons read from the member's records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from compensation.models import Disconnect, DisconnectStatus, Node
from compensation.services.credit import compensation_credit
from compensation.services.disconnects import disconnect_compensate
from compensation.services.policy import policy_publish
from members.models import Notification, NotificationKind
from members.services.preferences import preferences_for
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login
from portal.assistant.answers import answer_question
from portal.assistant.services import (
    SupportRequestError,
    support_request_close,
    support_request_create,
    support_request_reply,
)
from portal.models import SupportRequestStatus

pytestmark = pytest.mark.django_db


def _request(member, now):
    return support_request_create(
        member=member, message="我要人工", conversation=[], language="zh-hans", now=now
    )


def test_the_member_sees_the_request_then_the_staff_reply_and_gets_a_notice(client):
    now = timezone.now()
    user = MemberFactory(email="follow@example.com")
    request = _request(user.member, now)
    client.force_login(user)
    page = client.get(reverse("portal:support-requests")).content.decode()
    assert request.reference in page and "等待工作人员回复" in page
    staff = StaffFactory(email="answer@example.com")
    support_request_reply(request=request, staff=staff, reply="已为您补时 30 分钟。", now=now)
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.ANSWERED
    assert [(r.author, r.body) for r in request.replies.all()] == [(staff, "已为您补时 30 分钟。")]
    page = client.get(reverse("portal:support-requests")).content.decode()
    assert "已为您补时 30 分钟。" in page and "已回复" in page
    notice = Notification.objects.get(user=user, kind=NotificationKind.SUPPORT_REPLY)
    assert request.reference in notice.title
    assert notice.url.endswith(f"#request-{request.reference}")


def test_a_second_answer_adds_to_the_thread_and_notifies_again(client):
    now = timezone.now()
    user = MemberFactory(email="thread@example.com")
    request = _request(user.member, now)
    staff = StaffFactory(email="thread-staff@example.com")
    support_request_reply(request=request, staff=staff, reply="第一条回复", now=now)
    later = now + timedelta(minutes=5)
    support_request_reply(request=request, staff=staff, reply="第二条\x00回复\r\n谢谢", now=later)
    assert [r.body for r in request.replies.all()] == ["第一条回复", "第二条回复\n谢谢"]
    client.force_login(user)
    page = client.get(reverse("portal:support-requests")).content.decode()
    assert page.index("第一条回复") < page.index("第二条回复<br>谢谢")
    notices = Notification.objects.filter(user=user, kind=NotificationKind.SUPPORT_REPLY)
    assert notices.count() == 2


def test_closing_an_answered_request_records_the_status_it_replaced(db):
    from auditlog.models import LogEntry

    now = timezone.now()
    request = _request(MemberFactory(email="close@example.com").member, now)
    staff = StaffFactory(email="closer@example.com")
    support_request_reply(request=request, staff=staff, reply="答复", now=now)
    assert support_request_close(request=request, staff=staff, now=now) is True
    assert support_request_close(request=request, staff=staff, now=now) is False
    entry = LogEntry.objects.get_for_object(request).latest("timestamp")
    assert entry.changes_dict["status"] == [SupportRequestStatus.ANSWERED, "closed"]


def test_another_members_requests_are_not_shown(client):
    now = timezone.now()
    mine, theirs = MemberFactory(email="mine@example.com"), MemberFactory(email="t@example.com")
    other = _request(theirs.member, now)
    client.force_login(mine)
    assert other.reference not in client.get(reverse("portal:support-requests")).content.decode()
    client.logout()
    assert client.get(reverse("portal:support-requests")).status_code == 302  # sign in first


def test_a_reply_needs_text_and_an_open_request(db):
    now = timezone.now()
    request = _request(MemberFactory(email="r@example.com").member, now)
    staff = StaffFactory(email="s@example.com")
    with pytest.raises(SupportRequestError) as refused:
        support_request_reply(request=request, staff=staff, reply="  ", now=now)
    assert refused.value.code == "reply_required"
    support_request_close(request=request, staff=staff, now=now)
    with pytest.raises(SupportRequestError) as refused:
        support_request_reply(request=request, staff=staff, reply="late", now=now)
    assert refused.value.code == "closed"


def test_staff_reply_in_admin_only_with_the_permission_and_it_is_audited(client):
    from auditlog.models import LogEntry

    now = timezone.now()
    user = MemberFactory(email="adm@example.com")
    request = _request(user.member, now)
    staff = StaffFactory(email="viewer-only@example.com")
    staff.user_permissions.add(Permission.objects.get(codename="view_supportrequest"))
    staff_login(client, staff)
    url = reverse("admin:portal_supportrequest_change", args=[request.pk])
    assert 'name="reply"' not in client.get(url).content.decode()  # view only
    assert client.post(url, {"reply": "hi"}).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="reply_supportrequest"))
    staff = type(staff).objects.get(pk=staff.pk)
    staff_login(client, staff)
    assert 'name="reply"' in client.get(url).content.decode()
    response = client.post(url, {"reply": "我们查到了那次掉线。"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.ANSWERED
    assert [r.body for r in request.replies.all()] == ["我们查到了那次掉线。"]
    assert "我们查到了那次掉线。" in client.get(url).content.decode()  # the thread, in admin
    entry = LogEntry.objects.get_for_object(request).latest("timestamp")
    assert entry.actor == staff and entry.changes_dict["reply"] == ["", "我们查到了那次掉线。"]


def test_the_assistant_links_the_request_page_after_a_hand_over(client):
    user = MemberFactory(email="hand@example.com")
    client.force_login(user)
    body = client.post(
        "/api/v1/assistant/", {"question": "我要人工"}, content_type="application/json"
    ).json()
    assert body["intent"] == "human"
    assert reverse("portal:support-requests") in [link["url"] for link in body["links"]]


# --- why less ----------------------------------------------------------------


def _node():
    node, _ = Node.objects.get_or_create(
        name="why-node", defaults={"token_hash": "e" * 64, "token_prefix": "why"}
    )
    return node


def _disconnect(member, start, minutes, n):
    d = Disconnect.objects.create(
        member=member,
        node=_node(),
        session_id=f"why-{n}",
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        status=DisconnectStatus.CLOSED,
        detected_at=start + timedelta(minutes=minutes + 1),
    )
    disconnect_compensate(disconnect_id=d.pk, now=start + timedelta(minutes=minutes + 1))
    return d


def _why(member, now, question="why was I credited less"):
    return answer_question(question=question, member=member, now=now)


def test_why_less_names_time_already_paid_by_another_report(db):
    now = timezone.now().replace(microsecond=0)
    member = MemberFactory(email="cov@example.com").member
    start = now - timedelta(hours=2)
    compensation_credit(
        member_id=member.pk,
        intervals=[(start, start + timedelta(minutes=20))],
        source_kind="incident",
        source_ref="inc",
        idempotency_key="inc-1",
        now=start,
    )
    _disconnect(member, start, 30, 1)
    answer = _why(member, now)
    assert "20 min of it had already been paid through another report" in answer.text


def test_why_less_names_the_30_day_cap(db):
    now = timezone.now().replace(microsecond=0)
    policy_publish(changes={"cap_window_minutes": 40}, actor=None, note="small window", now=now)
    member = MemberFactory(email="win@example.com").member
    _disconnect(member, now - timedelta(hours=5), 30, 1)
    _disconnect(member, now - timedelta(hours=2), 30, 2)
    answer = _why(member, now)
    assert "20 min were withheld by the cap of" in answer.text  # 40 - 30 left 10 of 30
    assert any(link.url.startswith(reverse("compensation:policy")) for link in answer.links)


def test_why_less_names_time_after_the_membership_lapsed(db):
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=2)
    member = MemberFactory(
        email="lapse@example.com", membership__expires_at=start + timedelta(minutes=10)
    ).member
    _disconnect(member, start, 30, 1)
    text = _why(member, now).text
    assert "20 min of it fell after your membership had ended" in text


def test_why_less_with_nothing_withheld_explains_the_threshold(db):
    now = timezone.now().replace(microsecond=0)
    member = MemberFactory(email="whole@example.com").member
    _disconnect(member, now - timedelta(hours=2), 12, 1)
    text = _why(member, now, "为什么我的补偿少了").text
    assert "没有任何扣减" in text and "短于 5 分钟" in text


def test_card_key_question_points_to_the_redeem_page_in_english_and_chinese(db):
    now = timezone.now()
    for question in ("卡密怎么用", "how do I redeem a card key"):
        answer = answer_question(question=question, member=None, now=now)
        assert answer.intent == "card_key"
        assert reverse("compensation:redeem") in [link.url for link in answer.links]


def test_support_reply_emails_can_be_turned_off_and_back_on():
    user = MemberFactory()
    kinds = [row["kind"] for row in preferences_for(user=user)]
    assert NotificationKind.SUPPORT_REPLY in kinds
