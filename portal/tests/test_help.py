"""The help centre at /help/: every article in both languages, search, and
policy figures that follow the live policy.

Assumes kamen_portal/urls.py mounts ``portal.help_urls`` at ``/help/``.
"""

import re

import pytest
from django.utils import timezone

from compensation.services.policy import policy_publish
from portal.help import ARTICLES, MAX_QUERY_LENGTH, clean_query, plain_text

pytestmark = pytest.mark.django_db

EN = {"HTTP_COOKIE": "django_language=en"}
ZH = {"HTTP_COOKIE": "django_language=zh-hans"}
SLUGS = [
    "what-is-a-disconnect",
    "automatic-compensation",
    "record-a-disconnect",
    "file-an-appeal",
    "good-evidence",
    "appeal-rejected",
    "verify-a-receipt",
    "account-security",
]
HAN = re.compile(r"[\u4e00-\u9fff]")


def _text(response) -> str:
    return response.content.decode()


def _article_body(html: str) -> str:
    match = re.search(r'data-testid="help-article">(.*?)</article>', html, re.S)
    assert match, "article body not found"
    return match.group(1)


def test_the_registry_holds_the_fixed_slugs():
    assert [a.slug for a in ARTICLES] == SLUGS


@pytest.mark.parametrize("slug", SLUGS)
def test_every_article_renders_in_chinese_by_default(client, slug):
    article = next(a for a in ARTICLES if a.slug == slug)
    response = client.get(f"/help/{slug}/")
    assert response.status_code == 200
    html = _text(response)
    assert '<html lang="zh-hans">' in html
    assert article.title["zh-hans"] in html
    body = plain_text(_article_body(html))
    # Written in Chinese, at length; no template syntax leaked.
    assert len(HAN.findall(body)) > 200
    assert "{{" not in body and "{%" not in body


@pytest.mark.parametrize("slug", SLUGS)
def test_every_article_renders_in_english_with_the_language_cookie(client, slug):
    article = next(a for a in ARTICLES if a.slug == slug)
    response = client.get(f"/help/{slug}/", **EN)
    assert response.status_code == 200
    html = _text(response)
    assert '<html lang="en">' in html
    assert article.title["en"] in html
    body = plain_text(_article_body(html))
    assert not HAN.search(body), "the English body contains Chinese text"
    assert len(body.split()) > 150
    assert "{{" not in body and "{%" not in body


def test_articles_link_to_the_real_pages(client):
    bodies = "".join(_text(client.get(f"/help/{slug}/", **EN)) for slug in SLUGS)
    for url in (
        "/my/disconnects/",
        "/my/compensation/",
        "/appeals/",
        "/appeals/new/",
        "/policy/",
        "/status/",
        "/ledger/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/2fa/",
        "/account/reminders/",
        "/inbox/",
        "/help/good-evidence/",
    ):
        assert f'href="{url}"' in bodies, url


def test_unknown_article_is_404(client):
    assert client.get("/help/no-such-article/").status_code == 404
    assert client.get("/help/no-such-article/", **EN).status_code == 404


def test_index_lists_every_article_grouped_by_topic(client):
    zh = _text(client.get("/help/"))
    en = _text(client.get("/help/", **EN))
    for article in ARTICLES:
        assert f'href="/help/{article.slug}/"' in zh
        assert article.title["zh-hans"] in zh
        assert article.title["en"] in en
    assert "掉线与补偿" in zh and "Disconnects and compensation" in en
    assert 'name="q"' in zh


@pytest.mark.parametrize("headers", [ZH, EN], ids=["zh-hans", "en"])
def test_search_finds_an_article_by_a_word_in_its_body(client, headers):
    response = client.get("/help/", {"q": "12315"}, **headers)
    assert response.status_code == 200
    html = _text(response)
    assert 'href="/help/appeal-rejected/" data-testid="help-result"' in html
    assert "<mark>12315</mark>" in html
    assert 'data-testid="help-no-results"' not in html


def test_search_in_chinese_matches_chinese_words(client):
    html = _text(client.get("/help/", {"q": "恢复代码"}))
    assert 'href="/help/account-security/" data-testid="help-result"' in html
    assert "<mark>恢复代码</mark>" in html


def test_search_is_case_insensitive_and_needs_every_word(client):
    html = _text(client.get("/help/", {"q": "RECOVERY codes"}, **EN))
    assert 'href="/help/account-security/" data-testid="help-result"' in html
    assert html.count('data-testid="help-result"') == 1
    # The word keeps its own case inside the highlight.
    assert "<mark>recovery</mark>" in html.lower()


def test_search_covers_only_the_current_language(client):
    html = _text(client.get("/help/", {"q": "申诉"}, **EN))
    assert 'data-testid="help-no-results"' in html
    assert 'data-testid="help-result"' not in html


@pytest.mark.parametrize("query", ["", "   ", "\x00", "\t\n"])
def test_empty_query_shows_the_plain_index(client, query):
    response = client.get("/help/", {"q": query})
    assert response.status_code == 200
    assert 'data-testid="help-results"' not in _text(response)


@pytest.mark.parametrize(
    "query",
    ["(*+?[\\", "%", "<script>alert(1)</script>", "' OR 1=1 --", "🙂" * 30, "ǅ İ ß ﬁ"],
)
def test_absurd_queries_answer_cleanly(client, query):
    response = client.get("/help/", {"q": query}, **EN)
    assert response.status_code == 200
    html = _text(response)
    assert 'data-testid="help-results"' in html
    assert "<script>alert(1)" not in html


def test_very_long_query_is_truncated_not_an_error(client):
    response = client.get("/help/", {"q": "x" * 5000}, **EN)
    assert response.status_code == 200
    html = _text(response)
    box = re.search(r'id="help-q" name="q" value="([^"]*)"', html)
    assert box and box.group(1) == "x" * MAX_QUERY_LENGTH
    assert "shortened" in html
    assert 'data-testid="help-no-results"' in html


def test_a_long_query_is_cut_and_still_searches(client):
    query = "12315 " * 40
    text, truncated = clean_query(query)
    assert truncated and len(text) <= MAX_QUERY_LENGTH
    html = _text(client.get("/help/", {"q": query}, **EN))
    assert 'href="/help/appeal-rejected/" data-testid="help-result"' in html


def test_search_query_count_is_bounded(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        assert client.get("/help/", {"q": "appeal"}, **EN).status_code == 200


def test_post_is_not_allowed(client):
    assert client.post("/help/", {"q": "x"}).status_code == 405


@pytest.mark.parametrize("headers", [ZH, EN], ids=["zh-hans", "en"])
def test_appeal_window_in_the_help_follows_a_newly_published_policy(client, headers):
    before = plain_text(_article_body(_text(client.get("/help/file-an-appeal/", **headers))))
    assert "48" not in before
    policy_publish(changes={"appeal_window_hours": 48}, actor=None, note="x", now=timezone.now())
    after = plain_text(_article_body(_text(client.get("/help/file-an-appeal/", **headers))))
    if headers is EN:
        assert "within 48 hours after the disconnect ends" in after
        assert "within 24 hours after the disconnect ends" not in after
    else:
        assert "掉线结束后 48 小时内" in after
        assert "掉线结束后 24 小时内" not in after


def test_other_policy_figures_follow_the_policy(client):
    policy_publish(
        changes={
            "threshold_minutes": 7,
            "sla_first_response_hours": 36,
            "coupon_min_disconnects": 4,
        },
        actor=None,
        note="x",
        now=timezone.now(),
    )
    disconnect = _text(client.get("/help/what-is-a-disconnect/", **EN))
    assert "for more than 7 minutes" in disconnect
    appeal = _text(client.get("/help/file-an-appeal/", **EN))
    assert "within 36 hours" in appeal
    compensation = _text(client.get("/help/automatic-compensation/", **EN))
    assert "4 or more compensated disconnects" in compensation


def test_search_sees_the_live_policy_figures(client):
    policy_publish(changes={"appeal_window_hours": 72}, actor=None, note="x", now=timezone.now())
    html = _text(client.get("/help/", {"q": "72 hours"}, **EN))
    assert 'href="/help/file-an-appeal/" data-testid="help-result"' in html
