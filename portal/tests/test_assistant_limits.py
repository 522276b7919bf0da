"""The assistant's rate limit (issue 20, item 10): there is one for
anonymous visitors and for members, it answers 429 with a message in the
asker's language and a Retry-After, and it counts atomically: N questions at
the same instant get at most the limit through."""

import json
import threading
import unicodedata

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from members.tests.factories import MemberFactory
from portal.assistant.services import (
    ANONYMOUS_RATE_PER_MINUTE,
    MEMBER_RATE_PER_MINUTE,
    assistant_rate_check,
)
from portal.models import AssistantQuestion, SupportRequest

pytestmark = pytest.mark.django_db
API = "/api/v1/assistant/"


def _ask(client, question="掉线多久才算", **headers):
    return client.post(
        API, json.dumps({"question": question}), content_type="application/json", **headers
    )


@pytest.fixture
def own_cache(settings):
    # A cache of this process alone unless Redis is configured: the embedded
    # file cache is shared with other test runs on the machine.
    if not settings.REDIS_URL:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def one_minute():
    # Inside one window (a minute), whatever the wall clock does.
    with time_machine.travel(timezone.now().replace(second=5), tick=False):
        yield


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh-hans", "提问过于频繁，请 55 秒后再试。"),
        ("en", "Too many questions in a row. Try again in 55 seconds."),
    ],
)
def test_anonymous_limit_is_a_429_in_the_askers_language(
    client, own_cache, one_minute, language, words
):
    client.cookies["django_language"] = language
    for _ in range(ANONYMOUS_RATE_PER_MINUTE):
        assert _ask(client).status_code == 200
    response = _ask(client)
    assert response.status_code == 429
    assert response.json() == {"error": "throttled", "detail": words}
    assert response["Retry-After"] == "55"
    # Feedback counts in the same budget (it writes too).
    feedback = client.post(
        "/api/v1/assistant/feedback/",
        json.dumps({"question_id": "00000000-0000-0000-0000-000000000000", "helpful": True}),
        content_type="application/json",
    )
    assert feedback.status_code == 429


def test_members_have_their_own_larger_budget_not_their_addresses(client, own_cache, one_minute):
    for _ in range(ANONYMOUS_RATE_PER_MINUTE):
        assert _ask(client).status_code == 200
    assert _ask(client).status_code == 429
    # A member behind the same address (a café, a NAT) is counted as themself.
    client.force_login(MemberFactory())
    client.get("/")  # a CSRF cookie, as the panel has
    token = client.cookies["csrftoken"].value
    answers = [
        _ask(client, HTTP_X_CSRFTOKEN=token).status_code for _ in range(MEMBER_RATE_PER_MINUTE + 1)
    ]
    assert answers == [200] * MEMBER_RATE_PER_MINUTE + [429]


def test_the_next_minute_opens_again(client, own_cache):
    start = timezone.now().replace(second=5)
    with time_machine.travel(start, tick=False):
        for _ in range(ANONYMOUS_RATE_PER_MINUTE + 1):
            _ask(client)
        assert _ask(client).status_code == 429
    with time_machine.travel(start.replace(second=0) + timezone.timedelta(minutes=1), tick=False):
        assert _ask(client).status_code == 200


@pytest.mark.redis
def test_simultaneous_questions_get_at_most_the_limit_through(own_cache):
    member = MemberFactory().member
    now = timezone.now().replace(second=5)
    tries = MEMBER_RATE_PER_MINUTE * 3
    barrier = threading.Barrier(tries)
    allowed = []

    def one():
        barrier.wait()
        allowed.append(assistant_rate_check(member=member, client_ip="", now=now).allowed)

    threads = [threading.Thread(target=one) for _ in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == MEMBER_RATE_PER_MINUTE


# --- what a question may carry --------------------------------------------


@pytest.mark.parametrize(
    "question",
    ["nul\x00inside 掉线", "lone \ud800 surrogate 掉线", "bell\x07 esc\x1b[31m 掉线", "\u202e掉线"],
)
def test_invisible_characters_never_reach_the_records(client, own_cache, question):
    """A NUL or a lone surrogate in a question was a 500 on PostgreSQL (the
    question log cannot store it); bidi overrides would reorder what staff
    read in a support request."""
    response = client.post(API, json.dumps({"question": question}), content_type="application/json")
    assert response.status_code == 200, response.content
    logged = AssistantQuestion.objects.get(public_id=response.json()["question_id"])
    assert "掉线" in logged.text
    assert not [ch for ch in logged.text if unicodedata.category(ch)[0] == "C"]


def test_a_question_of_nothing_but_invisible_characters_gets_the_unreadable_answer(
    client, own_cache
):
    """Schema-valid (not only spaces), so it is answered, never a 500 or a
    refusal the schema does not announce; nothing invisible is echoed."""
    response = client.post(
        API, json.dumps({"question": "\x00\u202e\x07"}), content_type="application/json"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "\\u0000" not in body and "\\u202e" not in body.lower()
    blank = client.post(API, json.dumps({"question": "   "}), content_type="application/json")
    assert blank.status_code == 400 and blank.json()["error"] == "invalid"


def test_the_page_and_the_support_request_store_clean_text(client, own_cache):
    user = MemberFactory()
    client.force_login(user)
    response = client.post("/assistant/", {"question": "nul\x00 \u202e我要人工"})
    assert response.status_code == 302
    response = client.post("/assistant/support/", {"message": "help\x00 \u202eme"})
    assert response.status_code == 302
    request = SupportRequest.objects.get(member=user.member)
    # The page's "talk to a person" opened it; the message was added to it.
    assert request.message == "nul 我要人工\n---\nhelp me"
    text = json.dumps(request.conversation, ensure_ascii=False)
    assert "\\u0000" not in text and "\u202e" not in text
