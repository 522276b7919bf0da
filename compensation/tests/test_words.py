"""The words a member reads: one name per ledger kind on every page, no
doubled words, and a card key's own redeemer told when it was redeemed
(while everybody else keeps the one refusal)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone, translation

from compensation.entry_labels import entry_label
from compensation.models import LedgerEntry, LedgerKind
from compensation.services.card_keys import card_key_batch_void
from compensation.services.memberships import membership_purchase
from compensation.tests.test_card_keys import make_keys
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_purchase_has_one_name_on_dashboard_compensation_page_and_receipt(client):
    user = MemberFactory(membership__expires_at=None)
    entry = membership_purchase(
        member_id=user.member.pk, days=180, tier="gold", source_ref="t", now=timezone.now()
    )
    client.force_login(user)
    client.cookies["django_language"] = "zh-hans"
    label = "购买 · 黄金"
    dashboard = _text(client.get("/dashboard/").content.decode())
    compensation = _text(client.get("/my/compensation/").content.decode())
    receipt = _text(client.get(f"/my/compensation/{entry.public_id}/").content.decode())
    for page in (dashboard, compensation, receipt):
        assert label in page
        assert "人工调整" not in page


@translation.override("en")
def test_entry_labels_name_credits_by_their_source_and_the_rest_by_kind():
    user = MemberFactory(membership__expires_at=None)
    entry = membership_purchase(
        member_id=user.member.pk, days=30, tier="silver", source_ref="t", now=timezone.now()
    )
    assert entry_label(entry) == "Purchase · Silver"
    credit = LedgerEntry(kind=LedgerKind.CREDIT, source_kind="disconnect", minutes=5)
    assert entry_label(credit) == "Own disconnect"
    adjustment = LedgerEntry(kind=LedgerKind.ADJUSTMENT, source_kind="manual", minutes=5)
    assert entry_label(adjustment) == "Staff adjustment"


def test_the_dashboard_says_remaining_once(client):
    user = MemberFactory(membership__expires_at=timezone.now() + timedelta(days=180, minutes=5))
    client.force_login(user)
    client.cookies["django_language"] = "zh-hans"
    html = client.get("/dashboard/").content.decode()
    remaining = re.search(r'data-testid="remaining">(.*?)</dd>', html, re.S).group(1)
    assert "180" in remaining and "剩余" not in remaining


def test_the_member_who_redeemed_a_key_is_told_when(client):
    _b, keys = make_keys(days=7, quantity=1)
    user = MemberFactory()
    client.force_login(user)
    assert client.post("/my/redeem/", {"key": keys[0]}).status_code == 302
    again = client.post("/my/redeem/", {"key": keys[0].lower().replace("-", " ")})
    html = again.content.decode()
    entry = LedgerEntry.objects.get(kind=LedgerKind.CARD_KEY)
    assert again.status_code == 200
    assert 'data-testid="already-redeemed"' in html
    # The member's language (zh-hans by default) wins over the cookie.
    assert "您已于" in html and "增加了 7 天" in html
    assert f"/my/compensation/{entry.public_id}/" in html
    assert 'data-testid="redeem-error"' not in html
    assert LedgerEntry.objects.filter(kind=LedgerKind.CARD_KEY).count() == 1


def _refusal(response) -> str:
    html = response.content.decode()
    return re.search(r'data-testid="redeem-error">(.*?)</div>', html, re.S).group(1)


def test_everybody_else_gets_one_byte_identical_refusal(client):
    now = timezone.now()
    _b, used = make_keys(quantity=1)
    owner = MemberFactory()
    client.force_login(owner)
    assert client.post("/my/redeem/", {"key": used[0]}).status_code == 302
    _b, expired = make_keys(quantity=1, valid_for=timedelta(seconds=1))
    voided_batch, voided = make_keys(quantity=1)
    card_key_batch_void(batch=voided_batch, now=now)
    other = MemberFactory()
    client.force_login(other)
    answers = set()
    for key in (used[0], expired[0], voided[0], "2" * 20, "not a key"):
        if key == expired[0]:
            with time_machine.travel(now + timedelta(days=1), tick=False):
                response = client.post("/my/redeem/", {"key": key})
        else:
            response = client.post("/my/redeem/", {"key": key})
        assert response.status_code == 400
        assert 'data-testid="already-redeemed"' not in response.content.decode()
        answers.add(_refusal(response))
    assert len(answers) == 1
