"""A member redeems a card key (卡密) in the browser, sees the new expiry and
downloads the receipt; the same key from two browsers at once works for one
and fails cleanly for the other, adding nothing."""

import hashlib
import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from compensation.models import LedgerEntry, LedgerKind
from compensation.services.card_keys import card_key_batch_create, card_key_batch_generate
from members.tests.factories import PASSWORD, MemberFactory, StaffFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _keys(quantity: int, days: int = 30) -> list[str]:
    now = timezone.now()
    batch = card_key_batch_create(
        name="E2E shop",
        tier="diamond",
        days=days,
        quantity=quantity,
        valid_until=now + timedelta(days=30),
        actor=StaffFactory(email="op-e2e@example.com"),
        now=now,
    )
    return card_key_batch_generate(batch=batch, now=now)


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def test_member_redeems_a_card_key_and_sees_expiry_and_receipt(page, live_server, shots, tmp_path):
    now = timezone.now()
    user = MemberFactory(email="buyer@example.com", membership__expires_at=now + timedelta(days=3))
    key = _keys(1, days=30)[0]
    _sign_in(page, live_server.url, "buyer@example.com")
    page.click("[data-testid=redeem-link]")
    page.wait_for_url(re.compile(r"/my/redeem/$"))
    shots(page, "60-redeem-form")
    # Typed the way people type: lower case, spaces instead of dashes.
    page.fill("input[name=key]", key.lower().replace("-", " "))
    page.click("[data-testid=redeem-form] button[type=submit]")
    page.wait_for_selector("[data-testid=redeemed]")
    shots(page, "61-redeemed")
    user.member.refresh_from_db()
    member_tz = ZoneInfo(user.member.timezone)  # pages show the member's own time zone
    expected = user.member.expires_at.astimezone(member_tz).strftime("%Y-%m-%d %H:%M")
    assert expected in page.inner_text("[data-testid=new-expiry]")
    assert user.member.expires_at - (now + timedelta(days=3)) == timedelta(days=30)
    page.click("[data-testid=receipt-link]")  # the receipt page of the new entry
    page.wait_for_url(re.compile(r"/my/compensation/[0-9a-f-]+/$"))
    with page.expect_download() as download_info:
        page.click("[data-testid=receipt-json]")
    path = tmp_path / "receipt.json"
    download_info.value.save_as(path)
    receipt = json.loads(path.read_text())
    assert receipt["entry"]["kind"] == "card_key" and receipt["entry"]["minutes"] == 30 * 1440
    canon = json.dumps(receipt["entry"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # A version 2 receipt: the digest of its body, and (no checkpoint yet
    # in this journey) when the next signed checkpoint is due.
    assert hashlib.sha256(canon.encode()).hexdigest() == receipt["body_digest"]
    assert receipt["receipt_version"] == 2 and receipt["log"] is None
    # The history names the entry.
    page.goto(f"{live_server.url}/my/compensation/")
    assert page.locator("[data-kind=card_key]").count() == 1
    shots(page, "62-history-with-card-key")
    # The same key again, by the member who redeemed it: told when, with
    # the receipt, and nothing added.
    page.goto(f"{live_server.url}/my/redeem/")
    page.fill("input[name=key]", key)
    page.click("[data-testid=redeem-form] button[type=submit]")
    page.wait_for_selector("[data-testid=already-redeemed]")
    shots(page, "63-redeem-again-already-redeemed")
    assert page.locator("[data-testid=redeem-error]").count() == 0
    assert LedgerEntry.objects.filter(kind=LedgerKind.CARD_KEY).count() == 1
    assert page.console_errors == []


def test_the_same_key_from_two_browsers_at_once_works_once(browser, live_server, shots):
    now = timezone.now()
    emails = ["twin-a@example.com", "twin-b@example.com"]
    users = [MemberFactory(email=e, membership__expires_at=now + timedelta(days=1)) for e in emails]
    key = _keys(1)[0]
    pages = []
    for email in emails:
        context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
        page = context.new_page()
        _sign_in(page, live_server.url, email)
        page.goto(f"{live_server.url}/my/redeem/")
        page.fill("input[name=key]", key)
        pages.append(page)
    # Both forms are filled; submit them together: the two posts race on
    # the live server's threads (the barrier-released thread race on the
    # service itself is in compensation/tests/test_card_keys.py).
    for page in pages:
        page.evaluate("document.querySelector('[data-testid=redeem-form]').submit()")
    outcomes = []
    for i, page in enumerate(pages):
        page.wait_for_selector("[data-testid=redeemed], [data-testid=redeem-error]")
        shots(page, f"6{4 + i}-two-browsers-{i}")
        outcomes.append("ok" if page.locator("[data-testid=redeemed]").count() else "refused")
        page.context.close()
    assert sorted(outcomes) == ["ok", "refused"]
    assert LedgerEntry.objects.filter(kind=LedgerKind.CARD_KEY).count() == 1
    expiries = [u.member.__class__.objects.get(pk=u.member.pk).expires_at for u in users]
    assert sorted(e - (now + timedelta(days=1)) for e in expiries) == [
        timedelta(0),
        timedelta(days=30),
    ]
