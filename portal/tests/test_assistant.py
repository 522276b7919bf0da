import json
import re
import uuid

import pytest
import time_machine
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login
from portal.assistant import nlu
from portal.assistant.answers import answer_question
from portal.assistant.services import (
    ANONYMOUS_RATE_PER_MINUTE,
    support_request_close,
)
from portal.models import AssistantQuestion, SupportRequest, SupportRequestStatus

from .conftest import make_partly_credited

pytestmark = pytest.mark.django_db
API = "/api/v1/assistant/"


def _ask(client, question, **extra):
    return client.post(
        API, json.dumps({"question": question, **extra}), content_type="application/json"
    )


# --- understanding ---------------------------------------------------------


def test_normalise_folds_width_case_and_traditional_characters():
    assert nlu.normalise("為什麼只補償了１５分鐘？ ABC") == "为什么只补偿了15分钟? abc"


def test_entities_read_dates_times_and_member_numbers():
    found = nlu.entities(nlu.normalise("KM00001234 在 11-30 17:54 掉线 29 分钟"))
    assert found.member_numbers == ("KM00001234",)
    assert [(d.month, d.day) for d in found.dates] == [(11, 30)]
    assert [(t.hour, t.minute) for t in found.times] == [(17, 54)]
    assert found.minutes == (29,)


def test_the_log_keeps_no_member_number_email_or_phone():
    text = nlu.redact("我是 KM00001234，邮箱 a.b@example.com 电话 13812345678")
    assert "KM00001234" not in text and "example.com" not in text and "13812345678" not in text


# --- grounded answers ------------------------------------------------------


@pytest.mark.parametrize(
    "question", ["为什么只补了 15 分钟？", "why did I only get 15 minutes credited?"]
)
def test_partly_credited_disconnect_is_explained_with_minutes_receipt_and_deadline(question):
    s = make_partly_credited()
    answer = answer_question(question=question, member=s.member, now=timezone.now())
    assert answer.intent == "credit_why"
    figures = re.findall(r"\d+", answer.text)
    assert "15" in figures and "14" in figures and str(s.entry.seq) in figures
    deadline = timezone.localtime(s.disconnect.ended_at + timezone.timedelta(hours=24))
    assert deadline.strftime("%m-%d %H:%M") in answer.text
    urls = {link.url for link in answer.links}
    assert reverse("compensation:receipt-page", kwargs={"public_id": s.entry.public_id}) in urls
    assert answer.next_step.kind == "appeal"
    assert str(s.disconnect.public_id) in answer.next_step.url


def test_asking_about_another_member_number_reveals_nothing():
    s = make_partly_credited()
    other = make_partly_credited(email="other@example.com").member
    now = timezone.now()
    about_real = answer_question(
        question=f"{other.member_no} 为什么只补了 15 分钟", member=s.member, now=now
    )
    about_nobody = answer_question(
        question="KM99999999 为什么只补了 15 分钟", member=s.member, now=now
    )
    assert about_real.text == about_nobody.text
    assert about_real.links == [] and not re.search(r"\d", about_real.text)


def test_anonymous_visitors_get_policy_answers_and_no_member_facts():
    s = make_partly_credited()
    answer = answer_question(
        question="why did I only get 15 minutes?", member=None, now=timezone.now()
    )
    when = timezone.localtime(s.disconnect.started_at).strftime("%m-%d %H:%M")
    assert when not in answer.text and "14" not in re.findall(r"\d+", answer.text)
    assert all(str(s.entry.public_id) not in link.url for link in answer.links)
    assert answer.next_step.kind == "sign_in"


# --- API ---------------------------------------------------------------------


def test_api_answers_a_member_with_intent_confidence_and_links(client):
    s = make_partly_credited()
    client.force_login(s.user)
    response = _ask(client, "为什么只补了 15 分钟？")
    assert response.status_code == 200
    body = response.json()
    assert body["intent"] == "credit_why"
    assert 0 <= body["confidence"] <= 1
    assert any(link["kind"] == "receipt" for link in body["links"])
    assert body["next_step"]["kind"] == "appeal"
    assert AssistantQuestion.objects.filter(public_id=body["question_id"]).exists()


def test_api_answers_anonymous_visitors(client):
    response = _ask(client, "掉线多久才算？")
    assert response.status_code == 200
    assert response.json()["intent"] == "detection"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_body"),
        ('"question"', "invalid_body"),
        ("{}", "invalid"),
        ('{"question": 42}', "invalid"),
        ('{"question": ["a"]}', "invalid"),
        ('{"question": "   "}', "invalid"),
        ('{"question": "hi", "language": "fr"}', "invalid"),
        (json.dumps({"question": "x" * 501}), "invalid"),
        ('{"a":' * 40 + "1" + "}" * 40, "json_too_deep"),
    ],
)
def test_api_refuses_bad_bodies_with_a_400_and_a_code(client, body, code):
    response = client.post(API, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == code


def test_api_refuses_other_content_types(client):
    response = client.post(API, {"question": "hi"})
    assert response.status_code == 415


def test_members_need_the_csrf_token(member_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(member_user)
    response = _ask(client, "hi")
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


def test_anonymous_questions_are_rate_limited_per_address(client, settings):
    # A cache of this process alone: the embedded file cache is shared with
    # any other test run on the machine, whose clean-up would reset counts.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Inside one minute (the window), whatever the wall clock does.
    with time_machine.travel(timezone.now().replace(second=5), tick=False):
        for _ in range(ANONYMOUS_RATE_PER_MINUTE):
            assert _ask(client, "掉线多久才算").status_code == 200
        response = _ask(client, "掉线多久才算")
    assert response.status_code == 429
    assert response.json()["error"] == "throttled"


def test_feedback_rates_an_answer_and_unknown_ids_are_404(client):
    question_id = _ask(client, "how do i appeal").json()["question_id"]
    url = "/api/v1/assistant/feedback/"
    ok = client.post(
        url, {"question_id": question_id, "helpful": False}, content_type="application/json"
    )
    assert ok.status_code == 200
    assert AssistantQuestion.objects.get(public_id=question_id).helpful is False
    missing = client.post(
        url, {"question_id": str(uuid.uuid4()), "helpful": True}, content_type="application/json"
    )
    assert missing.status_code == 404
    wrong = client.post(
        url, {"question_id": question_id, "helpful": "yes"}, content_type="application/json"
    )
    assert wrong.status_code == 400


def test_the_endpoint_is_in_the_openapi_schema_with_its_errors(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/assistant/"]["post"]
    assert {"200", "400", "403", "415", "429"} <= set(operation["responses"])


# --- a person ----------------------------------------------------------------


def test_asking_for_a_person_opens_a_support_request_with_the_conversation(client):
    user = MemberFactory(email="human@example.com")
    client.force_login(user)
    _ask(client, "掉线多久才算？")
    response = _ask(client, "我要人工")
    assert response.json()["intent"] == "human"
    request = SupportRequest.objects.get(member=user.member)
    assert request.status == SupportRequestStatus.OPEN
    assert [t["question"] for t in request.conversation] == ["掉线多久才算？", "我要人工"]
    assert request.reference in response.json()["answer"]
    # Asking again adds to the same request.
    _ask(client, "转人工！")
    assert SupportRequest.objects.filter(member=user.member).count() == 1


def test_staff_see_support_requests_in_admin_and_close_them(client):
    user = MemberFactory(email="human2@example.com")
    member_client = client.__class__()
    member_client.force_login(user)
    _ask(member_client, "我要人工")
    request = SupportRequest.objects.get(member=user.member)
    staff = StaffFactory(email="reviewer@example.com")
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(
        Permission.objects.get(codename="view_supportrequest"),
        Permission.objects.get(codename="close_supportrequest"),
    )
    staff_login(client, staff)
    page = client.get(reverse("admin:portal_supportrequest_change", args=[request.pk]))
    assert page.status_code == 200
    assert "我要人工" in page.content.decode()
    response = client.post(
        reverse("admin:portal_supportrequest_changelist"),
        {"action": "close_selected", "_selected_action": [request.pk]},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == SupportRequestStatus.CLOSED and request.closed_by == staff


def test_closing_twice_changes_nothing_the_second_time(db):
    user = MemberFactory(email="human3@example.com")
    staff = StaffFactory(email="s3@example.com")
    request = SupportRequest.objects.create(
        member=user.member,
        message="m",
        language="en",
        created_at=timezone.now(),
        updated_at=timezone.now(),
    )
    assert support_request_close(request=request, staff=staff, now=timezone.now()) is True
    assert support_request_close(request=request, staff=staff, now=timezone.now()) is False


def test_the_close_action_declares_its_permission():
    model_admin = admin.site._registry[SupportRequest]
    assert model_admin.close_selected.allowed_permissions == ["close"]


# --- the page without JavaScript ---------------------------------------------


def test_the_page_form_works_without_javascript(client):
    s = make_partly_credited()
    client.force_login(s.user)
    response = client.post(
        reverse("portal:assistant"), {"question": "why only 15 minutes credited?"}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    receipt = reverse("compensation:receipt-page", kwargs={"public_id": s.entry.public_id})
    assert receipt in html and 'data-testid="assistant-answer"' in html
    support = client.post(reverse("portal:support"), follow=True)
    assert support.status_code == 200
    assert SupportRequest.objects.filter(member=s.member).count() == 1


def test_every_page_has_the_panel_and_no_inline_script(client):
    html = client.get(reverse("help:index")).content.decode()
    assert 'data-testid="assistant-panel"' in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
