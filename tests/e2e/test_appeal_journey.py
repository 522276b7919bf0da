import re
from datetime import timedelta

import pytest
from django.utils import timezone

from appeals.models import Appeal, AppealStatus
from appeals.tests.factories import png_bytes
from compensation.services.detection import detection_run
from compensation.services.ingest import heartbeats_ingest
from compensation.services.nodes import node_create
from compensation.services.policy import policy_publish
from kamen_portal.celery import app as celery_app
from members.models import User
from members.tests.factories import PASSWORD, MemberFactory, StaffFactory
from tests.e2e.staff import admin_sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _login(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def test_member_appeals_a_capped_disconnect_and_a_reviewer_approves_it(
    page, live_server, shots, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    now = timezone.now().replace(second=0, microsecond=0)
    base = now - timedelta(hours=1)
    member = MemberFactory(
        email="appellant@example.com", membership__expires_at=now + timedelta(days=10)
    )
    witness = MemberFactory(email="w@example.com", membership__expires_at=now + timedelta(days=10))
    reviewer = StaffFactory(email="reviewer@example.com")
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)  # groups and permissions
    reviewer = User.objects.get(email="reviewer@example.com")
    reviewer.set_password(PASSWORD)
    reviewer.save()
    policy_publish(changes={"cap_per_event_minutes": 5}, actor=None, note="e2e", now=now)
    node, _ = node_create(name="sh-node-09", now=now)
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

    _login(page, live_server.url, "appellant@example.com")
    page.goto(f"{live_server.url}/my/disconnects/")
    page.locator("[data-testid=appeal-link]").first.click()
    page.wait_for_url(re.compile(r"/appeals/new/"))
    assert "sh-node-09" in page.locator("[data-testid=disconnect-summary]").inner_text()
    shot = tmp_path / "screenshot.png"
    shot.write_bytes(png_bytes(size=(800, 500)))
    page.fill("textarea[name=description]", "13 分钟掉线，只补了 5 分钟。")
    page.set_input_files("input[name=screenshots]", str(shot))
    shots(page, "20-appeal-form")
    page.locator("[data-testid=submit-appeal]").click()
    page.wait_for_url(re.compile(r"/appeals/[0-9a-f-]{36}/$"))
    appeal = Appeal.objects.get()
    assert page.locator("[data-testid=appeal-status]").inner_text() == appeal.get_status_display()
    shots(page, "21-appeal-filed")
    assert appeal.suggested_minutes == 8  # 13 lost, 5 credited

    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    staff_page = context.new_page()
    # Staff come in through the one door: allauth's sign-in, password and code.
    admin_sign_in(staff_page, live_server.url, reviewer)
    staff_page.goto(f"{live_server.url}/admin/appeals/appeal/{appeal.pk}/change/")
    assert staff_page.locator(".kamen-evidence img").count() == 1
    # The one decision panel: approve (the default) with the suggestion and a
    # reason the member reads.
    staff_page.locator("[data-testid=panel-reason]").fill("检测记录与截图一致。")
    shots(staff_page, "22-admin-appeal")
    staff_page.locator("[data-testid=decide]").click()
    staff_page.wait_for_url(re.compile(rf"/admin/appeals/appeal/{appeal.pk}/change/$"))
    context.close()

    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.APPROVED
    page.goto(f"{live_server.url}/appeals/{appeal.public_id}/")
    assert "+8" in page.locator("[data-testid=appeal-credited]").inner_text()
    timeline = page.locator("[data-testid=timeline]").inner_text()
    assert timeline.count("\n") >= 2
    shots(page, "23-appeal-approved")
    assert page.console_errors == []
