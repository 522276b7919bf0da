"""Hostile text in the chat panel, in real Chromium (issue 20, item 10): a
member types markup into the assistant, an incident title carries markup the
assistant quotes back, and the member's name is markup too. No script runs
(``window.__xss`` stays unset, no dialog opens), no element is made from the
text, and every link the panel builds is a path on this site."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from compensation.models import IncidentKind, IncidentScope
from compensation.services.incidents import incident_declare
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    '<img src=x onerror="window.__xss=1;alert(1)">',
    "<script>window.__xss=2</script>",
    '<a href="javascript:window.__xss=3">点我</a>',
    '<svg onload="window.__xss=4">',
    '"><iframe srcdoc="<script>parent.__xss=5</script>">',
    "<para><font size=40>big</font></para>",
]
QUESTION = " ".join(PAYLOADS) + " \u202e掉线了怎么办 " + "Ｗ" * 80
TITLE = '<img src=x onerror="window.__xss=6">维护<script>window.__xss=7</script>'
NAME = '<img src=x onerror="window.__xss=8">'

# What the page would contain if any payload had become markup.
LIVE = "img, script:not([src^='/static/']), iframe, svg, para, font, [onerror], [onload], a[href^='javascript:' i]"


def _sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _ask(page, question):
    turns = page.locator("[data-testid=assistant-panel-log] [data-testid=assistant-turn]")
    before = turns.count()
    page.fill("[data-testid=assistant-question]", question)
    page.click("[data-testid=assistant-ask]")
    turns.nth(before).wait_for()
    return turns.nth(before)


def _assert_nothing_ran(page, dialogs, scope):
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []
    assert page.locator(scope).locator(LIVE).count() == 0
    for href in (
        page.locator(scope).locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    ):
        assert href.startswith("/") and not href.startswith("//"), href


def test_markup_in_the_chat_panel_stays_text(page, live_server, shots):
    now = timezone.now()
    user = MemberFactory(email="hostile@example.com", first_name=NAME, last_name=NAME)
    incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=now - timedelta(minutes=10),
        ended_at=now + timedelta(hours=1),
        ratio=None,
        title_zh=TITLE,
        title_en=TITLE,
        actor=None,
        now=now,
    )
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _sign_in(page, live_server.url, user.email)
    page.click("[data-testid=assistant-open]")

    turn = _ask(page, QUESTION)
    # The question is shown as typed (less the invisible bidi override).
    shown = turn.locator(".assistant-q").inner_text()
    for payload in PAYLOADS:
        assert payload in shown
    assert "\u202e" not in shown

    status = _ask(page, "现在是不是服务器出问题了？")
    assert TITLE in status.inner_text()
    assert status.get_by_role("link", name=TITLE).count() == 1
    _assert_nothing_ran(page, dialogs, "[data-testid=assistant-panel]")
    shots(page, "90-hostile-text-chat-panel")

    # The full page (no script needed) renders the same conversation from the
    # session, server-side.
    page.goto(f"{live_server.url}/assistant/")
    body = page.locator("main").inner_text()
    assert PAYLOADS[0] in body and TITLE in body
    _assert_nothing_ran(page, dialogs, "main")
    shots(page, "91-hostile-text-assistant-page")

    # The status page and the incident page quote the same title.
    page.goto(f"{live_server.url}/status/")
    assert TITLE in page.locator("main").inner_text()
    _assert_nothing_ran(page, dialogs, "main")
    assert [e for e in page.console_errors if "Content Security Policy" not in e] == []
