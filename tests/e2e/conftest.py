"""Real Chromium through Playwright against the live test server.

Playwright cannot download browsers here, so we launch Debian's Chromium
(`apt-get install chromium`) through ``executable_path``. Screenshots are kept
under test-output/e2e/ for a person to look at.
"""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the Django ORM calls
# the test itself makes (reading the outbox, asserting rows) are still plain
# synchronous code, so allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium_path() -> str | None:
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    path = _chromium_path()
    if path is None:
        pytest.skip("needs Chromium: apt-get install chromium (or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def portal_base_url(request, settings):
    """Links in e-mails and feeds come from PORTAL_BASE_URL: point it at the
    live server, as `make run` points it at its PORT."""
    if "live_server" in request.fixturenames:
        settings.PORTAL_BASE_URL = request.getfixturevalue("live_server").url


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.console_errors = []
    page.on(
        "console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None
    )
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page
    context.close()


@pytest.fixture
def shots(output_dir):
    directory = os.path.join(output_dir, "e2e")
    os.makedirs(directory, exist_ok=True)

    def take(page, name: str) -> str:
        path = os.path.join(directory, f"{name}.png")
        page.screenshot(path=path, full_page=True)
        return path

    take.path = lambda name: os.path.join(directory, f"{name}.png")
    return take
