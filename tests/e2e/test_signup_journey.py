import re

import pytest
from django.core import mail

from members.models import MemberProfile

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Lantern-harbour-2718"


def _submit(page):
    page.locator("main form button[type=submit]").first.click()


def test_member_signs_up_verifies_logs_in_and_switches_to_english(page, live_server, shots):
    page.goto(f"{live_server.url}/")
    # Chinese first, even though this browser asks for English.
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    shots(page, "01-landing-zh")

    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=email]", "journey@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    shots(page, "02-signup-zh")
    _submit(page)
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    shots(page, "03-verification-sent-zh")

    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    page.goto(link)
    shots(page, "04-confirm-email-zh")
    _submit(page)
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "journey@example.com")
    page.fill("input[name=password]", PASSWORD)
    _submit(page)
    page.wait_for_url(re.compile(r"/dashboard/$"))

    member_no = MemberProfile.objects.get(user__email="journey@example.com").member_no
    assert page.locator("[data-testid=member-no]").inner_text() == member_no
    assert page.locator("h1").inner_text() == "我的主页"
    shots(page, "05-dashboard-zh")

    page.click("[data-testid=lang-en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "My dashboard"
    shots(page, "06-dashboard-en")
    assert MemberProfile.objects.get(member_no=member_no).language == "en"

    assert page.console_errors == []


def test_phone_layout_has_a_working_menu(page, live_server, shots):
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server.url}/")
    nav = page.locator(".site-nav")
    assert not nav.is_visible()
    toggle = page.locator("[data-testid=nav-toggle]")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert nav.is_visible()
    assert toggle.get_attribute("aria-expanded") == "true"
    shots(page, "07-landing-phone-menu")
    assert page.console_errors == []
