"""A member on a phone with a keyboard only (Tab, Shift+Tab, Enter, Space and
typing): open the menu, sign in, find a disconnect and file an appeal."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from appeals.models import Appeal
from appeals.tests.factories import png_bytes
from compensation.services.detection import detection_run
from compensation.services.ingest import heartbeats_ingest
from compensation.services.nodes import node_create
from compensation.services.policy import policy_publish
from kamen_portal.celery import app as celery_app
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _tab_to(page, selector: str, *, limit: int = 60) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def _capped_disconnect(now):
    """A 12-minute disconnect of which the policy's cap credited only 5."""
    member = MemberFactory(email="keys@example.com", membership__expires_at=now + timedelta(days=9))
    policy_publish(changes={"cap_per_event_minutes": 5}, actor=None, note="e2e", now=now)
    node, _ = node_create(name="sh-node-07", now=now)
    base = now - timedelta(hours=1)
    beats = [
        {
            "member": member.member.member_no,
            "session": "s",
            "at": (base + timedelta(minutes=m)).isoformat(),
        }
        for m in [*range(0, 11), *range(23, 31)]
    ]
    celery_app.conf.task_always_eager = True
    try:
        heartbeats_ingest(node=node, payload={"heartbeats": beats}, now=now)
        detection_run(now=now)
    finally:
        celery_app.conf.task_always_eager = False
    return member


def test_phone_menu_sign_in_and_appeal_with_the_keyboard_alone(
    browser, live_server, shots, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    now = timezone.now().replace(second=0, microsecond=0)
    _capped_disconnect(now)
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/")

    # The menu is a real button, closed, and the navigation is hidden until it opens.
    toggle = page.locator("[data-testid=nav-toggle]")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not page.locator("#site-nav").is_visible()
    assert page.locator("[data-testid=lang-en]").is_visible()  # language switch on the phone
    _tab_to(page, "[data-testid=nav-toggle]")
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#site-nav").is_visible()
    shots(page, "40-keyboard-menu-open")
    _tab_to(page, "#site-nav a[href='/accounts/login/']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/accounts/login/"))

    _tab_to(page, "input[name=login]")
    page.keyboard.type("keys@example.com")
    _tab_to(page, "input[name=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard/$"))

    # Space opens the menu as well; Escape closes it and gives focus back.
    _tab_to(page, "[data-testid=nav-toggle]")
    page.keyboard.press("Space")
    assert toggle.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    page.keyboard.press("Enter")
    _tab_to(page, "#site-nav a[href='/my/disconnects/']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/my/disconnects/$"))

    _tab_to(page, "[data-testid=appeal-link]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/appeals/new/"))
    _tab_to(page, "textarea[name=description]")
    page.keyboard.type("掉线 12 分钟，只补了 5 分钟。")
    shot = tmp_path / "screenshot.png"
    shot.write_bytes(png_bytes(size=(600, 400)))
    _tab_to(page, "input[name=screenshots]")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(shot))
    shots(page, "41-keyboard-appeal-form")
    _tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/appeals/[0-9a-f-]{36}/$"))
    shots(page, "42-keyboard-appeal-filed")
    appeal = Appeal.objects.get()
    assert appeal.description == "掉线 12 分钟，只补了 5 分钟。"
    assert appeal.evidence.count() == 1
    context.close()
