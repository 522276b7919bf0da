"""A member asks the assistant in the chat panel, in Chinese and in English,
why a disconnect was only partly credited; the answer names the minutes,
links the receipt and offers the pre-filled appeal. On a phone-sized screen
the panel still fits."""

import re

import pytest
from django.urls import reverse

from members.tests.factories import PASSWORD
from portal.tests.conftest import make_partly_credited

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _ask(page, question):
    before = page.locator("[data-testid=assistant-panel-log] [data-testid=assistant-turn]").count()
    page.fill("[data-testid=assistant-question]", question)
    page.click("[data-testid=assistant-ask]")
    turns = page.locator("[data-testid=assistant-panel-log] [data-testid=assistant-turn]")
    turns.nth(before).wait_for()
    return turns.nth(before)


def test_member_asks_the_panel_in_chinese_and_english(page, live_server, shots):
    scenario = make_partly_credited(email="asker@example.com")
    receipt = reverse("compensation:receipt-page", kwargs={"public_id": scenario.entry.public_id})
    _sign_in(page, live_server.url, "asker@example.com")
    page.click("[data-testid=assistant-open]")
    assert page.locator("label[for=assistant-panel-q]").is_visible()

    chinese = _ask(page, "为什么只补了 15 分钟？")
    text = chinese.inner_text()
    assert "15" in text and "14" in text
    assert chinese.locator(f"a[href='{receipt}']").count() == 1
    assert (
        chinese.locator("[data-testid=assistant-next]")
        .get_attribute("href")
        .endswith(f"?disconnect={scenario.disconnect.public_id}")
    )
    shots(page, "60-assistant-panel-chinese")

    english = _ask(page, "why did I only get 15 minutes credited?")
    assert "15 min" in english.inner_text() and "14 min" in english.inner_text()
    assert english.locator(f"a[href='{receipt}']").count() == 1
    # The panel's labels follow the page language (Chinese here): read them
    # from the panel instead of assuming English.
    texts = page.locator("[data-text-yes]").first
    yes, thanks = texts.get_attribute("data-text-yes"), texts.get_attribute("data-text-thanks")
    english.locator(f"button[aria-label='{yes}']").click()
    english.get_by_text(thanks).wait_for()
    shots(page, "61-assistant-panel-english")
    assert page.console_errors == []

    # A phone: the panel fits the screen and still answers.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/my/disconnects/")
    page.click("[data-testid=assistant-open]")
    turn = _ask(page, "我要人工")
    assert re.search(r"[0-9A-F]{8}", turn.inner_text())
    box = page.locator("[data-testid=assistant-panel]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    shots(page, "62-assistant-panel-phone")
