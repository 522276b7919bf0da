"""Guided appeals, the dashboard's cap bar and the reviewer's one-click
approve, in real Chromium (screenshots under test-output/e2e/)."""

import re
import zoneinfo
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from appeals.models import Appeal, AppealStatus
from appeals.tests.factories import png_bytes
from compensation.models import Disconnect
from compensation.services.detection import detection_run
from compensation.services.ingest import heartbeats_ingest
from compensation.services.nodes import node_create
from kamen_portal.celery import app as celery_app
from members.models import User
from members.tests.factories import PASSWORD, MemberFactory
from tests.e2e.staff import admin_sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _login(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _credited_disconnect(now):
    """A 12-minute drop, detected and credited in full by the portal."""
    member = MemberFactory(
        email="guided@example.com", membership__expires_at=now + timedelta(days=10)
    )
    witness = MemberFactory(email="w2@example.com", membership__expires_at=now + timedelta(days=10))
    node, _ = node_create(name="gz-node-02", now=now)
    base = now - timedelta(hours=1)
    items = [
        {
            "member": u.member.member_no,
            "session": "s",
            "at": (base + timedelta(minutes=m)).isoformat(),
        }
        for u, minutes in ((member, [*range(0, 11), *range(23, 31)]), (witness, range(0, 31)))
        for m in minutes
    ]
    celery_app.conf.task_always_eager = True
    try:
        heartbeats_ingest(node=node, payload={"heartbeats": items}, now=now)
        detection_run(now=now)
    finally:
        celery_app.conf.task_always_eager = False
    return member


def test_guided_appeal_stops_before_upload_then_a_reviewer_approves_in_one_click(
    page, live_server, shots, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    now = timezone.now().replace(second=0, microsecond=0)
    call_command("seed_demo", verbosity=0)  # groups, permissions, the reviewer
    member = _credited_disconnect(now)
    disconnect = Disconnect.objects.get(member=member.member)
    assert disconnect.credited_minutes > 0 and not disconnect.withheld_minutes

    _login(page, live_server.url, "guided@example.com")
    # The dashboard answers "am I whole?": the cap bar is a real progress bar.
    bar = page.locator("[data-testid=cap-usage] progress")
    assert int(bar.get_attribute("value")) == disconnect.credited_minutes
    assert page.get_by_label(re.compile("补偿上限")).count() == 1
    assert "本月已补偿" in page.locator("[data-testid=membership]").inner_text()
    shots(page, "30-dashboard-cap-bar")

    page.goto(f"{live_server.url}/my/disconnects/")
    page.locator("[data-testid=appeal-link]").first.click()
    page.wait_for_url(re.compile(r"/appeals/new/"))
    refusal = page.locator("[data-testid=check-refusal]")
    assert refusal.get_attribute("data-code") == "already_compensated"
    assert page.locator("input[type=file]").count() == 0  # stopped before any upload
    assert page.locator("[data-testid=check-receipts] a").count() >= 1
    shots(page, "31-guided-appeal-fully-credited")

    # The member says it started 20 minutes earlier: extend the recorded span.
    start = page.locator("input[name=claimed_start]")
    earlier = timezone.localtime(
        disconnect.started_at - timedelta(minutes=20), zoneinfo.ZoneInfo(member.member.timezone)
    )
    start.fill(earlier.strftime("%Y-%m-%dT%H:%M"))
    page.locator("[data-testid=check-span]").click()
    page.wait_for_load_state()
    could_add = page.locator("[data-testid=check-could-add]").inner_text()
    assert "20" in could_add or "21" in could_add
    assert page.locator("[data-testid=check-refusal]").count() == 0
    shot = tmp_path / "screenshot.png"
    shot.write_bytes(png_bytes(size=(800, 500)))
    page.fill("textarea[name=description]", "掉线比记录的早开始了 20 分钟。")
    page.set_input_files("input[name=screenshots]", str(shot))
    shots(page, "32-guided-appeal-extended")
    page.locator("[data-testid=submit-appeal]").click()
    page.wait_for_url(re.compile(r"/appeals/[0-9a-f-]{36}/$"))
    appeal = Appeal.objects.get()
    assert appeal.claimed_start < disconnect.started_at
    assert page.locator("[data-testid=suggested-credit]").inner_text().strip() != ""
    assert "剩余" in page.locator("[data-testid=reply-deadline]").inner_text()
    shots(page, "33-appeal-page-finding")

    page.goto(f"{live_server.url}/my/disconnects/")
    assert page.locator("[data-testid=appeal-link]").count() == 0
    assert appeal.short_id in page.locator("[data-testid=appeal-status]").first.inner_text()
    shots(page, "34-disconnect-row-under-appeal")

    reviewer = User.objects.get(email="reviewer@example.com")
    reviewer.set_password(PASSWORD)
    reviewer.save()
    context = page.context.browser.new_context(viewport={"width": 1366, "height": 900})
    staff_page = context.new_page()
    admin_sign_in(staff_page, live_server.url, reviewer, path="/admin/appeals/appeal/")
    # Readable at 1366 px: the list does not overflow its page.
    overflow = staff_page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    assert "剩余" in staff_page.locator("#result_list .kamen-due").inner_text()
    shots(staff_page, "35-admin-appeal-list-1366")
    staff_page.goto(f"{live_server.url}/admin/appeals/appeal/{appeal.pk}/change/")
    panel = staff_page.locator("[data-testid=decision-panel]")
    assert panel.is_visible()
    shots(staff_page, "36-admin-decision-panel")
    staff_page.mouse.wheel(0, 1500)  # the panel stays in view while scrolling
    staff_page.wait_for_timeout(200)
    box = panel.bounding_box()
    assert box is not None and 0 <= box["y"] < 50
    # What the reviewer sees after scrolling: the viewport, not the full page.
    staff_page.screenshot(path=shots(staff_page, "36b-admin-panel-sticky"))
    # One panel: approve (the default) with the suggested credit and a reason.
    staff_page.locator("[data-testid=panel-reason]").fill("检测记录与截图一致。")
    staff_page.locator("[data-testid=decide]").click()
    staff_page.wait_for_url(re.compile(rf"/admin/appeals/appeal/{appeal.pk}/change/$"))
    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.APPROVED
    assert appeal.credited_minutes == appeal.suggested_minutes > 0
    shots(staff_page, "37-admin-approved")
    context.close()

    page.goto(f"{live_server.url}/appeals/{appeal.public_id}/")
    receipt = page.locator("[data-testid=credit-receipt]")
    entry = appeal.claim.entry
    assert receipt.get_attribute("href").endswith(f"/my/compensation/{entry.public_id}/")
    shots(page, "38-appeal-approved-with-receipt")
    assert page.console_errors == []
