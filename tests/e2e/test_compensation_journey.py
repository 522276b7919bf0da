import base64
import hashlib
import json
import re
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from compensation import tlog
from compensation.log_keys import log_origin, log_verifier
from compensation.services.detection import detection_run
from compensation.services.ledger_publish import ledger_publish_head
from compensation.services.nodes import node_create
from compensation.tlog_notes import open_checkpoint
from kamen_portal.celery import app as celery_app
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _post_heartbeats(base_url, token, items):
    request = urllib.request.Request(
        f"{base_url}/api/v1/heartbeats/",
        data=json.dumps({"heartbeats": items}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback live server
        assert response.status == 202
        return json.loads(response.read())


def test_a_dropped_member_sees_the_credit_and_verifies_the_receipt(
    page, live_server, shots, tmp_path
):
    celery_app.conf.task_always_eager = True
    try:
        now = timezone.now().replace(second=0, microsecond=0)
        base = now - timedelta(hours=1)
        member = MemberFactory(
            email="dropped@example.com", membership__expires_at=now + timedelta(days=10)
        )
        witness = MemberFactory(
            email="witness@example.com", membership__expires_at=now + timedelta(days=10)
        )
        _node, token = node_create(name="sh-node-01", now=now)

        def beats(user, minutes):
            return [
                {
                    "member": user.member.member_no,
                    "session": "s1",
                    "at": (base + timedelta(minutes=m)).isoformat(),
                }
                for m in minutes
            ]

        result = _post_heartbeats(
            live_server.url,
            token,
            beats(member, [*range(0, 11), *range(22, 31)]) + beats(witness, range(0, 31)),
        )
        assert result["accepted"] == 51 and result["rejected"] == []
        detection_run(now=now)
        ledger_publish_head(now=timezone.now())
    finally:
        celery_app.conf.task_always_eager = False

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "dropped@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    assert "+12" in page.locator("[data-testid=recent-credits]").inner_text()
    shots(page, "10-dashboard-with-credit")

    page.goto(f"{live_server.url}/my/disconnects/")
    row = page.locator("[data-testid=disconnects] tbody tr").first
    assert "sh-node-01" in row.inner_text()
    assert "+12" in row.inner_text()
    shots(page, "11-my-disconnects")

    page.goto(f"{live_server.url}/my/compensation/")
    shots(page, "12-my-compensation")
    with page.expect_download() as download_info:
        page.locator("[data-testid=ledger] a[download]").first.click()
    path = tmp_path / "receipt.json"
    download_info.value.save_as(path)
    r = json.loads(path.read_text(encoding="utf-8"))
    canon = json.dumps(
        r["entry"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    # Version 2: the leaf is the entry's canonical body, proven in the
    # signed checkpoint the public ledger page shows.
    assert hashlib.sha256(canon).hexdigest() == r["body_digest"]
    log = r["log"]
    assert base64.b64decode(log["leaf_data"]) == canon
    checkpoint = open_checkpoint(log["checkpoint"], log_verifier(), origin=log_origin()).checkpoint
    proof = [base64.b64decode(h) for h in log["proof"]]
    tlog.check_inclusion(
        proof, checkpoint.size, checkpoint.root_hash, log["index"], tlog.leaf_hash(canon)
    )
    assert r["entry"]["minutes"] == 12

    page.goto(f"{live_server.url}/ledger/")
    assert log["checkpoint"].split("\n")[2] in page.content()
    shots(page, "13-public-ledger")
    assert page.console_errors == []
