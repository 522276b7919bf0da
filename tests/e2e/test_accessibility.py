"""axe-core over every page, in both languages, on a desktop and a phone.

The pages are the translation crawler's (``tests/site/pages.py``): found from
the URL resolver, the admin registry and links, for each kind of person. Each
page is opened once per language and viewport in one shared Chromium, as the
first role that reached it, and axe-core (pinned through
axe-playwright-python, which ships axe.min.js) must find no *serious* or
*critical* violation of WCAG 2.1 A/AA, and no page may be wider than the
screen (a sideways scroll). The full results go to test-output/e2e/axe.json.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client

from members.models import User
from members.services.accounts import member_set_language
from members.tests.mfa import staff_login
from tests.site.pages import ROLE_EMAILS, crawl, seed_site

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LANGUAGES = [code for code, _name in settings.LANGUAGES]
ROLES = ("anonymous", "member", "reviewer", "supervisor")
RUN_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
BLOCKING = {"serious", "critical"}


def _signed_in(role: str) -> Client:
    client = Client()
    if role == "member":
        client.force_login(User.objects.get(email=ROLE_EMAILS[role]))
    elif role != "anonymous":
        staff_login(client, User.objects.get(email=ROLE_EMAILS[role]))
    return client


def _pages_by_role(clients) -> dict[str, list[str]]:
    """Each page once, under the first role (in ROLES order) that reached it,
    and one page per view (a second appeal renders the same template)."""
    taken, pages = set(), {}
    for role in ROLES:
        pages[role] = []
        for url, _html in crawl(clients[role], per_view=1):
            if url not in taken:
                taken.add(url)
                pages[role].append(url)
    return pages


def test_no_serious_accessibility_violation_on_any_page(
    browser, live_server, output_dir, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    site = seed_site()
    clients = {role: _signed_in(role) for role in ROLES}
    pages = _pages_by_role(clients)
    axe = Axe()
    results, failures, overflow = [], [], []
    started = time.monotonic()
    for role in ROLES:
        context = browser.new_context(viewport=VIEWPORTS["desktop"])
        session = clients[role].cookies.get(settings.SESSION_COOKIE_NAME)
        if session is not None:
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session.value,
                        "url": live_server.url,
                    }
                ]
            )
        page = context.new_page()
        for language in LANGUAGES:
            context.add_cookies(
                [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
            )
            if role == "member":
                member_set_language(profile=site.member, language=language)
            for url in pages[role]:
                page.set_viewport_size(VIEWPORTS["desktop"])
                t0 = time.monotonic()
                page.goto(live_server.url + url, wait_until="load")
                page.evaluate(axe.axe_script)  # once per document, run twice
                load_seconds = time.monotonic() - t0
                # One load per page and language; the phone run re-lays the
                # same document out at 390 px.
                for viewport, size in VIEWPORTS.items():
                    page.set_viewport_size(size)
                    t1 = time.monotonic()
                    found = page.evaluate("o => axe.run(document, o)", RUN_OPTIONS)["violations"]
                    # Wider than the screen: the page would scroll sideways.
                    width = page.evaluate("document.documentElement.scrollWidth")
                    if width > size["width"] + 1:
                        overflow.append(f"{url} [{role} {language} {viewport}] {width}px")
                    results.append(
                        {
                            "url": url,
                            "role": role,
                            "language": language,
                            "viewport": viewport,
                            "load_s": round(load_seconds, 2),
                            "axe_s": round(time.monotonic() - t1, 2),
                            "violations": [
                                {
                                    "id": v["id"],
                                    "impact": v["impact"],
                                    "targets": [n["target"] for n in v["nodes"]][:5],
                                }
                                for v in found
                            ],
                        }
                    )
                    for v in found:
                        if v["impact"] in BLOCKING:
                            targets = [n["target"] for n in v["nodes"]][:3]
                            failures.append(
                                f"{url} [{role} {language} {viewport}] {v['impact']} {v['id']}: {targets}"
                            )
        context.close()
    os.makedirs(os.path.join(output_dir, "e2e"), exist_ok=True)
    with open(os.path.join(output_dir, "e2e", "axe.json"), "w") as fh:
        json.dump(
            {
                "seconds": round(time.monotonic() - started, 1),
                "overflow": overflow,
                "pages": results,
            },
            fh,
            indent=1,
        )
    assert sum(len(v) for v in pages.values()) > 30, pages
    assert failures == [], f"{len(failures)} serious/critical violations:\n" + "\n".join(failures)
    assert overflow == [], "pages wider than the screen:\n" + "\n".join(overflow)
