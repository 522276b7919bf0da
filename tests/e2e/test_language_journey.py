"""The reader's language is kept (issue 21, item 2), in real Chromium: an
English reader signs up, gets an English e-mail whose links all point at the
portal's address, and lands on an English dashboard with an English message;
a Chinese reader the same in Chinese; a Chinese account that chooses English
on the page before signing in gets English, message included."""

import html
import re

import pytest
from django.core import mail

from members.models import MemberProfile
from members.tests.factories import PASSWORD as FACTORY_PASSWORD
from members.tests.factories import MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Lantern-harbour-2718"
TEXT = {
    "en": {
        "subject": "Confirm your e-mail address for the Kamen member portal",
        "greeting": "Hello,",
        "sign_off": "Kamen member portal · ",
        "dashboard": "My dashboard",
        "signed_in": "Successfully signed in",
    },
    "zh-hans": {
        "subject": "请确认您在卡盟会员中心使用的电子邮箱地址",
        "greeting": "您好，",
        "sign_off": "卡盟会员中心 · ",
        "dashboard": "我的主页",
        "signed_in": "成功登录",
    },
}


def _submit(page):
    page.locator("main form button[type=submit]").first.click()


def _show_email(page, message, shots, name):
    """The e-mail as a person would read it, kept as a screenshot."""
    page.set_content(
        f"<h3>{html.escape(message.subject)}</h3><p>From: {html.escape(message.from_email)}</p>"
        f"<pre style='white-space:pre-wrap;font-size:15px'>{html.escape(message.body)}</pre>"
    )
    shots(page, name)


def _sign_in(page, base, email, password):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    _submit(page)
    page.wait_for_url(re.compile(r"/dashboard/$"))


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_sign_up_email_and_dashboard_in_the_readers_language(page, live_server, shots, language):
    words = TEXT[language]
    base = live_server.url
    email = f"journey-{language}@example.com"
    page.goto(f"{base}/")
    if language == "en":
        page.click("[data-testid=lang-en]")
        page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == language

    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    _submit(page)
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    assert MemberProfile.objects.get(user__email=email).language == language

    message = mail.outbox[-1]
    assert message.subject == words["subject"]
    assert message.body.startswith(words["greeting"])
    assert words["sign_off"] + base + "/" in message.body
    links = re.findall(r"https?://\S+", message.body)
    assert links and all(link.startswith(base + "/") for link in links), links
    _show_email(page, message, shots, f"95-verification-email-{language}")

    link = next(link for link in links if "/accounts/confirm-email/" in link)
    page.goto(link)
    _submit(page)
    page.wait_for_load_state()
    _sign_in(page, base, email, PASSWORD)
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("h1").inner_text() == words["dashboard"]
    flashes = page.locator(".message, [role=status], .messages li").all_inner_texts()
    assert any(words["signed_in"] in text for text in flashes), flashes
    shots(page, f"96-dashboard-after-sign-up-{language}")
    assert page.console_errors == []


def test_a_chinese_account_choosing_english_before_signing_in_reads_english(
    page, live_server, shots
):
    user = MemberFactory(email="member1@example.com")
    assert user.member.language == "zh-hans"
    page.goto(f"{live_server.url}/")
    page.click("[data-testid=lang-en]")
    page.wait_for_load_state()
    _sign_in(page, live_server.url, user.email, FACTORY_PASSWORD)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "My dashboard"
    flashes = page.locator(".message, [role=status], .messages li").all_inner_texts()
    assert any("Successfully signed in" in text for text in flashes), flashes
    assert MemberProfile.objects.get(user=user).language == "en"
    shots(page, "97-chinese-account-chose-english")
