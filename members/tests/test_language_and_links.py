"""The reader's language is kept from sign-up on, and every absolute link
comes from PORTAL_BASE_URL (issue 21, items 2 and 3)."""

import os
import re
import subprocess
import sys
from datetime import timedelta
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from members.models import MemberProfile
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

BASE = "http://portal.test:18000"
STRONG = "Lantern-harbour-2718"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.PORTAL_BASE_URL = BASE


def _choose(client, language):
    client.post("/i18n/setlang/", {"language": language, "next": "/"})


def _signup(client, email):
    response = client.post(
        reverse("account_signup"), {"email": email, "password1": STRONG, "password2": STRONG}
    )
    assert response.status_code == 302
    return mail.outbox[-1]


def _links(text):
    return re.findall(r"https?://[^\s<>\"')]+", text)


def _sign_in(client, email, password=PASSWORD):
    return client.post(
        reverse("account_login"), {"login": email, "password": password}, follow=True
    )


@pytest.mark.parametrize(
    ("language", "subject", "greeting", "name"),
    [
        (
            "en",
            "Confirm your e-mail address for the Kamen member portal",
            "Hello,",
            "Kamen member portal",
        ),
        ("zh-hans", "请确认您在卡盟会员中心使用的电子邮箱地址", "您好，", "卡盟会员中心"),
    ],
)
def test_the_language_chosen_before_sign_up_is_the_accounts_and_its_emails(
    client, language, subject, greeting, name
):
    _choose(client, language)
    message = _signup(client, f"new-{language}@example.com")
    assert MemberProfile.objects.get(user__email=f"new-{language}@example.com").language == language
    assert message.subject == subject
    body = message.body
    assert body.startswith(greeting)
    assert f"{name} · {BASE}/" in body
    # Ours, not allauth's: no "Hello from", no Site name or domain.
    for foreign in (
        "Hello from",
        "来自",
        "Kamen 会员中心",
        "example.com!",
        "127.0.0.1:8000",
        "testserver",
    ):
        assert foreign not in body, foreign
    links = _links(body)
    assert links and all(link.startswith(f"{BASE}/") for link in links), links
    assert any("/accounts/confirm-email/" in link for link in links)


def test_without_a_choice_the_account_and_its_email_are_chinese(client):
    message = _signup(client, "nochoice@example.com")
    assert MemberProfile.objects.get(user__email="nochoice@example.com").language == "zh-hans"
    assert message.body.startswith("您好，")


def test_every_later_email_is_in_the_accounts_language(client):
    _choose(client, "en")
    _signup(client, "later@example.com")
    client.cookies.clear()  # another browser, Chinese by default
    client.post(reverse("account_reset_password"), {"email": "later@example.com"})
    reset = mail.outbox[-1]
    assert reset.body.startswith("Hello,")
    assert all(link.startswith(f"{BASE}/") for link in _links(reset.body))


def test_signing_in_keeps_the_language_chosen_on_the_page(client):
    user = MemberFactory(email="zh@example.com")  # account language: Chinese
    _choose(client, "en")
    response = _sign_in(client, user.email)
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert MemberProfile.objects.get(user=user).language == "en"
    html = response.content.decode()
    assert '<html lang="en"' in html and "My dashboard" in html
    # The flash message after sign-in is in the same language as the page.
    flashes = [str(m) for m in response.context["messages"]]
    assert flashes and all("Successfully signed in" in m for m in flashes), flashes


def test_signing_in_without_a_choice_uses_the_accounts_language(client):
    user = MemberFactory(email="en@example.com")
    MemberProfile.objects.filter(user=user).update(language="en")
    response = _sign_in(client, user.email)
    html = response.content.decode()
    assert '<html lang="en"' in html and "My dashboard" in html
    flashes = [str(m) for m in response.context["messages"]]
    assert flashes and all("Successfully signed in" in m for m in flashes), flashes
    # Signed out, the page stays in the account's language.
    client.post(reverse("account_logout"))
    assert '<html lang="en"' in client.get("/").content.decode()


def test_a_language_cookie_left_from_another_visit_does_not_rewrite_the_account(client):
    """A shared browser, or a change made on another device: only a choice
    made in this visit counts at sign-in."""
    user = MemberFactory(email="left@example.com")
    MemberProfile.objects.filter(user=user).update(language="en")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"  # left over
    response = _sign_in(client, user.email)
    assert MemberProfile.objects.get(user=user).language == "en"
    assert '<html lang="en"' in response.content.decode()


def test_a_chinese_account_signing_in_on_a_chinese_page_stays_chinese(client):
    user = MemberFactory(email="zh2@example.com")
    response = _sign_in(client, user.email)
    assert "我的主页" in response.content.decode()
    flashes = [str(m) for m in response.context["messages"]]
    assert flashes and all("成功登录" in m or "登录" in m for m in flashes), flashes


def test_every_link_and_id_of_the_status_feed_uses_the_portal_address(client):
    from compensation.models import IncidentKind, IncidentScope
    from compensation.services.incidents import incident_declare

    now = timezone.now()
    incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=now - timedelta(hours=1),
        ended_at=now + timedelta(hours=1),
        ratio=None,
        title_zh="数据库升级",
        title_en="Database upgrade",
        actor=None,
        now=now,
    )
    feed = ElementTree.fromstring(client.get(reverse("compensation:status-feed")).content)
    hrefs = [link.get("href") for link in feed.iter(f"{ATOM}link")]
    ids = [node.text for node in feed.iter(f"{ATOM}id") if not node.text.startswith("urn:")]
    assert len(hrefs) >= 3 and ids
    for url in hrefs + ids:
        assert url.startswith(f"{BASE}/"), url
    assert f"{BASE}/status/feed.atom" in hrefs


def test_the_receipt_pdf_names_the_portal_address(member_client, member_user):
    from compensation.services.credit import compensation_credit

    now = timezone.now()
    entry = compensation_credit(
        member_id=member_user.member.pk,
        intervals=[(now - timedelta(minutes=40), now - timedelta(minutes=20))],
        source_kind="disconnect",
        source_ref="links",
        idempotency_key="links",
        now=now,
    ).entry
    captured = {}
    import compensation.receipt_views as views

    real = views.receipt_pdf

    def spy(facts, *, page_url, ledger_url):
        captured.update(page=page_url, ledger=ledger_url)
        return real(facts, page_url=page_url, ledger_url=ledger_url)

    views.receipt_pdf = spy
    try:
        response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.pdf")
    finally:
        views.receipt_pdf = real
    assert response.status_code == 200
    assert captured == {
        "page": f"{BASE}/my/compensation/{entry.public_id}/",
        "ledger": f"{BASE}/ledger/",
    }


def test_portal_base_url_follows_port_when_unset():
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_BASE_URL"}
    env.update(PORT="18000", DJANGO_SETTINGS_MODULE="kamen_portal.settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.PORTAL_BASE_URL)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "http://127.0.0.1:18000"
    env["PORTAL_BASE_URL"] = "https://portal.example.com/"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "https://portal.example.com"


def test_portal_url_keeps_only_the_path_of_what_it_is_given():
    from kamen_portal.http import portal_url

    assert portal_url("/a/b/?x=1#f") == f"{BASE}/a/b/?x=1#f"
    assert portal_url("http://evil.example:9/accounts/x/") == f"{BASE}/accounts/x/"
    assert urlsplit(portal_url("")).path == "/"
