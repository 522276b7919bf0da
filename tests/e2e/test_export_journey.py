import hashlib
import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from compensation.services.credit import compensation_credit
from compensation.services.ledger_publish import ledger_publish_head
from kamen_portal.celery import app as celery_app
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_member_exports_their_record_and_verifies_a_receipt(
    page, live_server, shots, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    now = timezone.now()
    member = MemberFactory(
        email="exporter@example.com", membership__expires_at=now + timedelta(days=5)
    )
    compensation_credit(
        member_id=member.member.pk,
        intervals=[(now - timedelta(hours=3), now - timedelta(hours=3) + timedelta(minutes=12))],
        source_kind="disconnect",
        source_ref="e2e",
        idempotency_key="e2e",
        now=now,
    )
    head = ledger_publish_head(now=timezone.now())
    celery_app.conf.task_always_eager = True
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", "exporter@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/dashboard/$"))
        page.goto(f"{live_server.url}/account/export/")
        page.click("[data-testid=request-export]")
        page.wait_for_load_state()
    finally:
        celery_app.conf.task_always_eager = False
    shots(page, "30-export-requested")
    page.goto(f"{live_server.url}/inbox/")
    notice = page.locator("[data-testid=inbox] a").first
    shots(page, "31-export-ready-notice")
    with page.expect_download() as download_info:
        notice.click()
    path = tmp_path / "export.zip"
    download_info.value.save_as(path)
    archive = zipfile.ZipFile(path)
    receipt_name = next(n for n in archive.namelist() if n.startswith("receipts/"))
    r = json.loads(archive.read(receipt_name))
    canon = json.dumps(
        r["entry"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    digest = hashlib.sha256(canon).hexdigest()
    h = hashlib.sha256(f"{r['prev_hash']}:{digest}".encode()).hexdigest()
    assert h == r["hash"]
    for d in r["chain_to_head"]:
        h = hashlib.sha256(f"{h}:{d}".encode()).hexdigest()
    assert h == r["published_head"]["hash"] == head.hash
    page.goto(f"{live_server.url}/ledger/")
    assert head.hash in page.content()
    assert page.console_errors == []
