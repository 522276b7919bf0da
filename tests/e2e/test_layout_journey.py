"""Layout at the two viewports members use (1366 px laptop, 390 px phone),
in both languages, on the seeded demo: no clipped receipt column, a header
on one row, and nothing hidden behind the assistant bar."""

import re

import pytest
from django.core.management import call_command

from portal.management.commands.seed_demo import DEMO_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def demo(live_server):
    call_command("seed_demo", verbosity=0)


def _open(browser, live_server, *, viewport: str, language: str):
    context = browser.new_context(
        viewport=VIEWPORTS[viewport],
        locale="en-US" if language == "en" else "zh-CN",
        is_mobile=viewport == "phone",
        has_touch=viewport == "phone",
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator(f"[data-testid=lang-{language}]").click()
    page.fill("input[name=login]", "member1@example.com")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    # The header switch, signed in (keeping the choice across sign-in is
    # another test's business).
    page.locator(f"[data-testid=lang-{language}]").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    assert page.locator("html").get_attribute("lang") == language
    return context, page


def _box(page, selector):
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def _not_clipped(page, selector) -> bool:
    """The element's whole box is inside the viewport horizontally and inside
    every ancestor that clips overflow."""
    return page.locator(selector).first.evaluate(
        """el => {
          const r = el.getBoundingClientRect();
          if (r.width === 0 || r.left < 0 || r.right > document.documentElement.clientWidth) return false;
          for (let a = el.parentElement; a; a = a.parentElement) {
            const s = getComputedStyle(a);
            if (s.overflowX !== 'visible' || s.overflow !== 'visible') {
              const b = a.getBoundingClientRect();
              if (r.left < b.left - 0.5 || r.right > b.right + 0.5) return false;
            }
          }
          return true;
        }"""
    )


def _reachable(page, selector) -> bool:
    """What a tap at the element's centre (and at a quarter of its width
    from either side of it) hits is the element itself."""
    return page.locator(selector).first.evaluate(
        """el => {
          const r = el.getBoundingClientRect();
          const y = r.top + r.height / 2;
          return [0.5, 0.25].every(f => {
            const hit = document.elementFromPoint(r.left + r.width * f, y);
            return hit !== null && (hit === el || el.contains(hit));
          });
        }"""
    )


def _assert_header_on_one_row(page, viewport):
    """Logo, navigation (or the menu button) and language switch share one
    row: the header is one row high."""
    brand = _box(page, ".site-header .brand")
    for other in (".site-nav" if viewport == "desktop" else ".nav-toggle", ".lang-switch"):
        box = _box(page, other)
        middle = box["y"] + box["height"] / 2
        assert abs(brand["y"] + brand["height"] / 2 - middle) < 12, (other, brand, box)
    header = _box(page, ".site-header")
    assert header["height"] <= 72, header


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_layout_at_both_viewports_in_both_languages(
    browser, live_server, demo, shots, viewport, language
):
    context, page = _open(browser, live_server, viewport=viewport, language=language)
    try:
        tag = f"{viewport}-{language}"
        shots(page, f"40-layout-dashboard-{tag}")
        _assert_header_on_one_row(page, viewport)
        if viewport == "desktop":  # and on the narrower laptops, down to the menu button
            for width in (1024, 1280):
                page.set_viewport_size({"width": width, "height": 768})
                _assert_header_on_one_row(page, viewport)
            page.set_viewport_size(VIEWPORTS["desktop"])

        page.goto(f"{live_server.url}/my/compensation/")
        pdf = "[data-testid=receipt-pdf]"
        page.locator(pdf).first.scroll_into_view_if_needed()
        shots(page, f"41-layout-compensation-{tag}")
        assert page.locator(pdf).first.is_visible()
        assert _not_clipped(page, pdf)
        assert _not_clipped(page, "[data-testid=receipt-json]")

        # The footer's last link is reachable with the assistant bar shown.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        # What the screen shows at the bottom (the full-page shots above
        # draw the floating button where the first screen has it).
        page.screenshot(path=shots.path(f"43-layout-compensation-bottom-{tag}"))
        last = ".site-footer a >> nth=-1"
        assert page.locator(last).is_visible()
        assert _reachable(page, ".footer-links a:last-child")

        page.goto(f"{live_server.url}/my/redeem/")
        shots(page, f"42-layout-redeem-{tag}")
        key = "input[name=key]"
        height = page.evaluate("document.body.scrollHeight")
        for y in range(0, height, 40):
            page.evaluate(f"window.scrollTo(0, {y})")
            if page.locator(key).evaluate(
                "el => { const r = el.getBoundingClientRect();"
                " return r.top >= 0 && r.bottom <= window.innerHeight; }"
            ):
                assert _reachable(page, key), f"card-key input covered at scroll {y}"
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        assert _reachable(page, ".footer-links a:last-child")
    finally:
        context.close()
