"""A member reads a receipt, prints it as a PDF and checks it in the browser
(WebCrypto): verified against the signed checkpoint of the transparency log
(receipts of version 2) or the published head (version 1), a tampered
receipt fails, and a credit newer than the last checkpoint says when the
next one is due."""

import base64
import hashlib
import io
import json
import os
import re
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from pypdf import PdfReader

from compensation.ledger import canonical
from compensation.log_selectors import latest_log_checkpoint
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

    # The receipt page, checked in the browser against the signed checkpoint.
    checkpoint = latest_log_checkpoint()
    assert checkpoint.size == head.seq
    state, text = _result(page)
    assert state == "ok", text
    assert "已通过核验" in text and f"{checkpoint.size} 条记录的已签名检查点" in text, text
    assert f"第 #{published.seq} 条记录" in text, text
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
    assert state == "fail" and "核验失败：条目内容与摘要不符" in text, text
    shots(page, "42-receipt-tampered")
    page.unroute(re.compile(r"/receipt\.json"))

    # A receipt newer than the last checkpoint: intact, and the page says
    # when the next checkpoint is due instead of failing.
    page.goto(f"{live_server.url}/my/compensation/{pending.public_id}/")
    state, text = _result(page)
    due = timezone.localtime(checkpoint.published_at + timedelta(minutes=1)).strftime(
        "%Y-%m-%d %H:%M"
    )
    assert state == "pending", text
    assert f"#{pending.seq}" in text and f"下一个检查点将于 {due} 前发布" in text, text
    shots(page, "43-receipt-pending-head")

    # The same in English.
    page.locator("[data-testid=lang-en]").first.click()
    page.wait_for_load_state()
    state, text = _result(page)
    assert state == "pending" and f"The next checkpoint is due by {due}" in text, text
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


def _flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def test_v2_receipt_file_checked_in_browser(page, live_server, shots):
    """A downloaded receipt of version 2 (the transparency log) passes the
    check on /ledger/: leaf data, inclusion proof to the checkpoint root and
    the checkpoint's Ed25519 signature with the key the page shows. Each kind
    of tampering fails with its own message, in English and Chinese."""
    celery_app.conf.task_always_eager = True
    try:
        now = timezone.now().replace(microsecond=0)
        member = MemberFactory(
            email="v2@example.com", membership__expires_at=now + timedelta(days=10)
        )
        other = MemberFactory(membership__expires_at=now + timedelta(days=10))
        entry = _credit(member.member, "v2a", start=now - timedelta(hours=3), minutes=14, now=now)
        # Canonical JSON the browser must reproduce byte for byte.
        odd = _credit(
            other.member,
            'o2 "维护"\\\n\t\x01 é',
            start=now - timedelta(hours=2),
            minutes=9,
            now=now,
        )
        _credit(other.member, "v2c", start=now - timedelta(hours=1), minutes=3, now=now)
        ledger_publish_head(now=now)
        pending = _credit(
            member.member, "v2d", start=now - timedelta(minutes=50), minutes=5, now=now
        )
    finally:
        celery_app.conf.task_always_eager = False
    checkpoint = latest_log_checkpoint()
    assert checkpoint is not None and checkpoint.size == pending.seq - 1

    _sign_in(page, live_server.url, "v2@example.com")
    # The receipt exactly as the member downloads it (the default version).
    download = page.request.get(f"{live_server.url}/my/compensation/{entry.public_id}/receipt.json")
    receipt = json.loads(download.text())
    assert receipt["receipt_version"] == 2 and receipt["log"]["proof"], receipt
    assert "chain_to_head" not in receipt

    page.locator("[data-testid=lang-en]").first.click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/ledger/")
    key = page.locator("[data-testid=log-key]").inner_text().strip()
    key_id = key.split("+")[1]

    page.set_input_files(
        "#receipt-file",
        files=[{"name": "ok.json", "mimeType": "application/json", "buffer": download.body()}],
    )
    state, text = _result(page, "file-verify-result")
    assert state == "ok", text
    assert f"Verified against the signed checkpoint of {checkpoint.size} entries" in text, text
    assert f"entry #{entry.seq} of the transparency log" in text and key_id in text, text
    shots(page, "50-ledger-file-v2-verified")

    def check(tampered, name):
        # Reset between files so a repeated state cannot be mistaken for the new one.
        page.evaluate(
            "document.querySelector('[data-testid=file-verify-result]').dataset.state = 'checking'"
        )
        page.set_input_files(
            "#receipt-file",
            files=[
                {
                    "name": f"{name}.json",
                    "mimeType": "application/json",
                    "buffer": json.dumps(tampered, ensure_ascii=False).encode(),
                }
            ],
        )
        return _result(page, "file-verify-result")

    # One more minute in the entry: it no longer matches its digest.
    bad = json.loads(download.text())
    bad["entry"]["minutes"] += 1
    state, text = check(bad, "minutes")
    assert state == "fail" and "the entry does not match its digest" in text, text
    shots(page, "51-ledger-file-v2-minutes-changed")

    # The same, with the digest recomputed: the log's leaf data gives it away.
    bad["body_digest"] = hashlib.sha256(canonical(bad["entry"])).hexdigest()
    state, text = check(bad, "minutes-digest")
    assert state == "fail" and "leaf data in the log proof is not the entry" in text, text

    # A flipped bit in one proof hash: the proof no longer leads to the root.
    bad = json.loads(download.text())
    bad["log"]["proof"][0] = _flip(bad["log"]["proof"][0], 5)
    state, text = check(bad, "proof")
    assert state == "fail", text
    assert (
        "inclusion proof does not lead to the root hash of the signed checkpoint "
        f"({checkpoint.size} entries)" in text
    ), text
    shots(page, "52-ledger-file-v2-proof-flipped")

    # A changed signature (the key ID kept): the checkpoint is forged.
    bad = json.loads(download.text())
    text_part, sig_lines = bad["log"]["checkpoint"].split("\n\n", 1)
    dash_name, sig = sig_lines.rstrip("\n").rsplit(" ", 1)
    bad["log"]["checkpoint"] = f"{text_part}\n\n{dash_name} {_flip(sig, 10)}\n"
    state, text = check(bad, "signature")
    assert state == "fail", text
    assert f"signature does not verify with the portal key {key_id}" in text, text
    shots(page, "53-ledger-file-v2-signature-changed")

    # A bigger tree size in the checkpoint text: this leaf's proof happens to
    # fit both sizes, but the signature covers the size.
    bad = json.loads(download.text())
    bad["log"]["checkpoint"] = bad["log"]["checkpoint"].replace(
        f"\n{checkpoint.size}\n", f"\n{checkpoint.size + 1}\n", 1
    )
    state, text = check(bad, "size")
    assert state == "fail" and "signature does not verify" in text, text

    # Signed with another key: not the portal's.
    bad = json.loads(download.text())
    bad["log"]["checkpoint"] = f"{text_part}\n\n— someone.example/log {sig}\n"
    state, text = check(bad, "other-key")
    assert state == "fail" and "not signed with the portal verifier key" in text, text

    # The old format still verifies on the same page.
    v1 = json.loads(
        page.request.get(
            f"{live_server.url}/my/compensation/{entry.public_id}/receipt.json?version=1"
        ).text()
    )
    state, text = check(v1, "v1")
    assert state == "ok" and "Verified against published head" in text, text

    # A receipt of another member's entry with text JSON must escape.
    state, text = check(receipt_for(odd), "odd")
    assert state == "ok", text

    # Saved while the entry was newer than the checkpoint: says when the next
    # is due; once a checkpoint covers it, to download it again.
    pending_receipt = receipt_for(pending)
    assert pending_receipt["log"] is None and pending_receipt["next_checkpoint_due"]
    state, text = check(pending_receipt, "pending")
    assert state == "pending" and "The next checkpoint is due by" in text, text
    ledger_publish_head(now=timezone.now())
    state, text = check(pending_receipt, "pending-later")
    assert state == "pending" and "download the receipt again to check it against" in text, text

    # In Chinese: a forged signature, then the good file.
    page.locator("[data-testid=lang-zh-hans]").first.click()
    page.wait_for_load_state()
    bad = json.loads(download.text())
    bad["log"]["checkpoint"] = f"{text_part}\n\n{dash_name} {_flip(sig, 10)}\n"
    state, text = check(bad, "signature-zh")
    assert state == "fail" and "核验失败：检查点的签名无法用门户密钥" in text, text
    shots(page, "54-ledger-file-v2-signature-changed-zh")
    state, text = check(json.loads(download.text()), "ok-zh")
    assert state == "ok" and "已通过核验" in text, text
    shots(page, "55-ledger-file-v2-verified-zh")
    assert page.console_errors == []
