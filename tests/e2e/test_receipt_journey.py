"""A member reads a receipt, prints it as a PDF and checks it in the browser
(WebCrypto): verified against the published head, a tampered receipt
fails, and a credit newer than the last head says when the next one is due."""

import io
import json
import os
import re
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from pypdf import PdfReader

from compensation.models import LedgerEntry
from compensation.receipts import receipt_for
from compensation.services.credit import compensation_credit
from compensation.services.ledger_publish import ledger_publish_head
from kamen_portal.celery import app as celery_app
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _credit(member, key, *, start, minutes, now):
    return compensation_credit(
        member_id=member.pk,
        intervals=[(start, start + timedelta(minutes=minutes))],
        source_kind="disconnect",
        source_ref=key,
        idempotency_key=key,
        now=now,
    ).entry


def _sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _result(page, testid="verify-result"):
    result = page.locator(f"[data-testid={testid}]")
    result.and_(page.locator("[data-state=ok], [data-state=fail], [data-state=pending]")).wait_for(
        timeout=15_000
    )
    return result.get_attribute("data-state"), result.inner_text()


def test_receipt_page_pdf_and_in_browser_verification(page, live_server, shots, output_dir):
    celery_app.conf.task_always_eager = True
    try:
        now = timezone.now().replace(microsecond=0)
        member = MemberFactory(
            email="receipt@example.com", membership__expires_at=now + timedelta(days=10)
        )
        other = MemberFactory(membership__expires_at=now + timedelta(days=10))
        published = _credit(
            member.member, "r1", start=now - timedelta(hours=3), minutes=14, now=now
        )
        # A reference that JSON must escape, in Chinese: the browser's
        # canonical JSON has to match Python's byte for byte.
        odd = _credit(
            other.member,
            'o1 "维护"\\\n\t\x01 é',
            start=now - timedelta(hours=3),
            minutes=9,
            now=now,
        )
        head = ledger_publish_head(now=now)
        pending = _credit(
            member.member,
            "r2",
            start=now - timedelta(hours=1),
            minutes=6,
            now=now + timedelta(seconds=1),
        )
    finally:
        celery_app.conf.task_always_eager = False
    # Two opening entries come first: the head covers both credits, not the third.
    assert head.seq == odd.seq and pending.seq == head.seq + 1

    _sign_in(page, live_server.url, "receipt@example.com")

    # Every credit links to its receipt; the member's own numbering is 1..n.
    page.goto(f"{live_server.url}/my/compensation/")
    links = page.locator("[data-testid=credit-link]")
    assert links.count() == 2
    assert links.nth(1).inner_text().startswith("+14")
    shots(page, "40-compensation-credit-links")
    links.nth(1).click()
    page.wait_for_url(re.compile(rf"/my/compensation/{published.public_id}/$"))

    # The receipt page, checked in the browser against the published head.
    state, text = _result(page)
    assert state == "ok", text
    assert f"#{head.seq}" in text and "已通过核验" in text
    # The receipt's own content has no serious accessibility problem (the
    # shared layout is checked by the site-wide axe run).
    violations = Axe().run(page, context="main").response["violations"]
    serious = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    facts = page.locator("[data-testid=receipt-facts]").inner_text()
    assert (
        published.hash in facts and "v1" in facts and "您的第 2 条（共 3 条）" in facts
    )  # after the opening entry
    assert page.locator("[data-print]").is_visible()
    shots(page, "41-receipt-verified")

    # The PDF: Chinese text a machine can read back.
    pdf_url = page.locator("[data-testid=receipt-pdf]").get_attribute("href")
    response = page.request.get(f"{live_server.url}{pdf_url}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    # Kept next to the screenshots for a person to open.
    with open(os.path.join(output_dir, "e2e", "47-receipt.pdf"), "wb") as kept:
        kept.write(response.body())
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert "补偿凭证" in text and "您的掉线补偿" in text and member.member.member_no in text

    # A receipt altered in transit (one more minute) fails, and says why.
    def tamper(route):
        body = json.loads(route.fetch().text())
        body["entry"]["minutes"] += 1
        route.fulfill(json=body)

    page.route(re.compile(r"/receipt\.json"), tamper)
    page.reload()
    state, text = _result(page)
    assert state == "fail" and "核验失败" in text and "改动" in text, text
    shots(page, "42-receipt-tampered")
    page.unroute(re.compile(r"/receipt\.json"))

    # A receipt newer than the last published head: intact, and the page
    # says when the next head is due instead of failing.
    page.goto(f"{live_server.url}/my/compensation/{pending.public_id}/")
    state, text = _result(page)
    due = timezone.localtime(head.published_at + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
    assert state == "pending", text
    assert f"#{pending.seq}" in text and due in text, text
    shots(page, "43-receipt-pending-head")

    # The same in English.
    page.locator("[data-testid=lang-en]").first.click()
    page.wait_for_load_state()
    state, text = _result(page)
    assert state == "pending" and f"The next head is due by {due}" in text, text
    shots(page, "44-receipt-pending-head-en")

    # Any saved receipt file can be checked on the public ledger page.
    good = page.request.get(
        f"{live_server.url}/my/compensation/{published.public_id}/receipt.json?version=1"
    )
    receipt = json.loads(good.text())
    page.goto(f"{live_server.url}/ledger/")
    page.set_input_files(
        "#receipt-file",
        files=[{"name": "ok.json", "mimeType": "application/json", "buffer": good.body()}],
    )
    state, text = _result(page, "file-verify-result")
    assert state == "ok" and f"Verified against published head #{head.seq}" in text, text
    shots(page, "45-ledger-file-verified")
    receipt["chain_to_head"][0] = "0" * 64
    page.set_input_files(
        "#receipt-file",
        files=[
            {
                "name": "bad.json",
                "mimeType": "application/json",
                "buffer": json.dumps(receipt).encode(),
            }
        ],
    )
    page.locator("[data-testid=file-verify-result][data-state=fail]").wait_for(timeout=15_000)
    assert (
        f"does not lead to published head #{head.seq}"
        in page.locator("[data-testid=file-verify-result]").inner_text()
    )
    assert page.locator("[data-testid=chain-json]").get_attribute("href") == "/ledger/chain.json"
    shots(page, "46-ledger-file-tampered")
    odd_receipt = json.dumps(receipt_for(odd, version=1), ensure_ascii=False).encode()
    page.set_input_files(
        "#receipt-file",
        files=[{"name": "odd.json", "mimeType": "application/json", "buffer": odd_receipt}],
    )
    state, text = _result(page, "file-verify-result")
    assert state == "ok" and f"Verified against published head #{head.seq}" in text, text

    # A receipt saved while pending, checked after a head was published:
    # told to download it again rather than "not yet published".
    pending_receipt = receipt_for(pending, version=1)
    assert pending_receipt["published_head"] is None
    ledger_publish_head(now=timezone.now())
    page.set_input_files(
        "#receipt-file",
        files=[
            {
                "name": "pending.json",
                "mimeType": "application/json",
                "buffer": json.dumps(pending_receipt).encode(),
            }
        ],
    )
    state, text = _result(page, "file-verify-result")
    assert state == "pending" and "download the receipt again" in text, text

    # The receipt page on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/my/compensation/{published.public_id}/")
    state, _text = _result(page)
    assert state == "ok"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shots(page, "48-receipt-phone")
    assert LedgerEntry.objects.exclude(kind="opening").count() == 3
    assert page.console_errors == []
