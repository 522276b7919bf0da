"""Card keys (卡密): generated once, stored as keyed hashes, redeemed once
whatever the concurrency, no oracle, and a lock-out on repeated failures."""

import csv
import io
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from compensation.models import CardKey, CardKeyBatch, LedgerEntry, LedgerKind
from compensation.services.card_keys import (
    KEY_LEN,
    CardKeyError,
    card_key_batch_create,
    card_key_batch_generate,
    card_key_batch_void,
    card_key_hash,
    card_key_normalize,
    card_key_redeem,
)
from members.models import MemberProfile, MemberStatus
from members.services.staff import staff_groups_sync
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


def make_keys(*, days=30, tier="gold", quantity=3, valid_for=timedelta(days=90)):
    now = timezone.now()
    batch = card_key_batch_create(
        name="Shop",
        tier=tier,
        days=days,
        quantity=quantity,
        valid_until=now + valid_for,
        actor=StaffFactory(),
        now=now,
    )
    return batch, card_key_batch_generate(batch=batch, now=now)


def test_keys_are_readable_high_entropy_and_stored_only_as_hashes():
    batch, keys = make_keys(quantity=20)
    assert len(set(keys)) == 20
    for key in keys:
        assert len(key) == 23 and key.count("-") == 3
        assert card_key_normalize(key) is not None
    stored = set(CardKey.objects.filter(batch=batch).values_list("key_hash", flat=True))
    assert stored == {card_key_hash(card_key_normalize(k)) for k in keys}
    assert not any(k.replace("-", "") in h for k in keys for h in stored)
    assert KEY_LEN * 5 >= 100  # bits of entropy


def test_a_batch_is_generated_and_downloaded_once():
    batch, _keys = make_keys()
    with pytest.raises(CardKeyError) as exc:
        card_key_batch_generate(batch=batch, now=timezone.now())
    assert exc.value.code == "already_downloaded"
    assert CardKey.objects.filter(batch=batch).count() == 3


def test_redeeming_adds_the_days_and_tier_on_the_ledger_once():
    now = timezone.now()
    _batch, keys = make_keys(days=30, tier="diamond")
    member = MemberFactory(membership__expires_at=now + timedelta(days=5)).member
    redemption = card_key_redeem(member=member, key=keys[0].lower(), client_ip="1.2.3.4", now=now)
    member.refresh_from_db()
    assert member.expires_at == now + timedelta(days=35) == redemption.expires_at
    assert member.tier == "diamond"
    assert redemption.entry.kind == LedgerKind.CARD_KEY
    assert CardKey.objects.get(entry=redemption.entry).redeemed_by == member
    other = MemberFactory().member
    with pytest.raises(CardKeyError) as exc:
        card_key_redeem(member=other, key=keys[0], client_ip="5.6.7.8", now=now)
    assert exc.value.code == "invalid_key"
    assert LedgerEntry.objects.filter(kind=LedgerKind.CARD_KEY).count() == 1


def test_used_expired_voided_and_unknown_keys_fail_alike():
    now = timezone.now()
    member = MemberFactory().member
    _b, used = make_keys(quantity=1)
    card_key_redeem(member=member, key=used[0], client_ip="", now=now)
    _b, expired = make_keys(quantity=1, valid_for=timedelta(days=1))
    voided_batch, voided = make_keys(quantity=1)
    card_key_batch_void(batch=voided_batch, now=now)
    unknown = "2" * 20
    outcomes = set()
    for key, when in (
        (used[0], now),
        (expired[0], now + timedelta(days=2)),
        (voided[0], now),
        (unknown, now),
        ("not a key at all", now),
    ):
        with pytest.raises(CardKeyError) as exc:
            card_key_redeem(member=member, key=key, client_ip="", now=when)
        outcomes.add((exc.value.code, exc.value.message))
    assert len(outcomes) == 1 and next(iter(outcomes))[0] == "invalid_key"


@override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=3, CARD_KEY_IP_FAILURE_LIMIT=5)
def test_a_member_entering_their_own_redeemed_key_again_is_told_and_never_locked_out():
    now = timezone.now()
    _b, keys = make_keys(quantity=1)
    member = MemberFactory().member
    entry = card_key_redeem(member=member, key=keys[0], client_ip="9.9.9.9", now=now).entry
    for _ in range(6):
        with pytest.raises(CardKeyError) as exc:
            card_key_redeem(member=member, key=keys[0], client_ip="9.9.9.9", now=now)
        assert exc.value.code == "invalid_key" and exc.value.own_entry == entry
    # Anybody else gets the one refusal, with nothing of the owner's.
    with pytest.raises(CardKeyError) as exc:
        card_key_redeem(member=MemberFactory().member, key=keys[0], client_ip="8.8.8.8", now=now)
    assert exc.value.code == "invalid_key" and exc.value.own_entry is None


@override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=3, CARD_KEY_IP_FAILURE_LIMIT=5)
def test_wrong_keys_lock_out_the_member_then_the_address():
    now = timezone.now()
    _b, keys = make_keys(quantity=2)
    member = MemberFactory().member
    for _ in range(3):
        with pytest.raises(CardKeyError):
            card_key_redeem(member=member, key="X" * 20, client_ip="9.9.9.9", now=now)
    with pytest.raises(CardKeyError) as exc:  # even the right key, while locked out
        card_key_redeem(member=member, key=keys[0], client_ip="9.9.9.9", now=now)
    assert exc.value.code == "locked_out" and exc.value.retry_after > 0
    assert not CardKey.objects.filter(redeemed_at__isnull=False).exists()
    # Other members behind the same address: two more failures lock the address.
    for _ in range(2):
        with pytest.raises(CardKeyError):
            card_key_redeem(
                member=MemberFactory().member, key="Y" * 20, client_ip="9.9.9.9", now=now
            )
    with pytest.raises(CardKeyError) as exc:
        card_key_redeem(member=MemberFactory().member, key=keys[1], client_ip="9.9.9.9", now=now)
    assert exc.value.code == "locked_out"
    redemption = card_key_redeem(
        member=MemberFactory().member, key=keys[1], client_ip="8.8.8.8", now=now
    )
    assert redemption.days == 30


def test_a_suspended_member_cannot_redeem():
    _b, keys = make_keys(quantity=1)
    member = MemberFactory().member
    MemberProfile.objects.filter(pk=member.pk).update(status=MemberStatus.SUSPENDED)
    member.refresh_from_db()
    with pytest.raises(CardKeyError) as exc:
        card_key_redeem(member=member, key=keys[0], client_ip="", now=timezone.now())
    assert exc.value.code == "account_inactive"


# --- Page and API ----------------------------------------------------------------


def test_the_page_redeems_and_shows_the_new_expiry_and_receipt(client):
    _b, keys = make_keys(days=7)
    user = MemberFactory()
    client.force_login(user)
    page = client.get("/my/redeem/")
    assert page.status_code == 200
    response = client.post("/my/redeem/", {"key": keys[0]})
    assert response.status_code == 302
    done = client.get(response["Location"])
    user.member.refresh_from_db()
    entry = LedgerEntry.objects.get(kind=LedgerKind.CARD_KEY)
    html = done.content.decode()
    assert 'data-testid="redeemed"' in html
    assert reverse("compensation:receipt-page", args=[entry.public_id]) in html
    assert client.get(reverse("compensation:receipt", args=[entry.public_id])).status_code == 200
    # The same key again, by the member who redeemed it: told when, not "invalid".
    again = client.post("/my/redeem/", {"key": keys[0]})
    assert again.status_code == 200 and 'data-testid="already-redeemed"' in again.content.decode()


def test_the_page_needs_a_signed_in_member(client):
    assert client.get("/my/redeem/").status_code == 302


def test_api_redeems_once_and_answers_every_error_shape(client):
    _b, keys = make_keys(days=10, tier="silver")
    user = MemberFactory()
    client.force_login(user)
    url = "/api/v1/card-keys/redeem/"
    ok = client.post(url, {"key": keys[0]}, content_type="application/json")
    assert ok.status_code == 200, ok.content
    body = ok.json()
    user.member.refresh_from_db()
    assert body["days"] == 10 and body["tier"] == "silver"
    assert body["expires_at"] == user.member.expires_at.isoformat()
    assert client.get(body["receipt_url"]).status_code == 200
    again = client.post(url, {"key": keys[0]}, content_type="application/json")
    assert again.status_code == 404 and again.json()["error"] == "invalid_key"
    missing = client.post(url, {}, content_type="application/json")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid"
    listed = client.post(url, [1], content_type="application/json")
    assert listed.status_code == 400 and listed.json()["error"] == "invalid_body"
    client.logout()
    assert client.post(url, {"key": keys[1]}, content_type="application/json").status_code == 403


@override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=2)
def test_api_lock_out_is_a_429_with_retry_after(client):
    client.force_login(MemberFactory())
    url = "/api/v1/card-keys/redeem/"
    for _ in range(2):
        client.post(url, {"key": "nope"}, content_type="application/json")
    locked = client.post(url, {"key": "nope"}, content_type="application/json")
    assert locked.status_code == 429 and locked.json()["error"] == "locked_out"
    assert int(locked["Retry-After"]) > 0


# --- Admin -----------------------------------------------------------------------


def test_operator_creates_a_batch_and_downloads_the_csv_once(client):
    staff_groups_sync()
    operator = StaffFactory()
    operator.groups.add(Group.objects.get(name="Operators"))
    staff_login(client, operator)
    until = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    response = client.post(
        reverse("admin:compensation_cardkeybatch_add"),
        {
            "name": "Shop A",
            "tier": "gold",
            "days": "30",
            "quantity": "5",
            "valid_until_0": until,
            "valid_until_1": "00:00:00",
        },
    )
    batch = CardKeyBatch.objects.get()
    assert response.status_code == 302
    url = reverse("admin:compensation_cardkeybatch_download", args=[batch.pk])
    assert response["Location"] == url
    assert client.get(url).status_code == 200 and not CardKey.objects.exists()
    download = client.post(url)
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0][0] == "card_key" and len(rows) == 6
    assert CardKey.objects.filter(batch=batch).count() == 5
    second = client.post(url)
    assert second.status_code == 302 and CardKey.objects.count() == 5


# --- Concurrency (PostgreSQL) ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_key_from_many_members_at_once_works_once():
    _b, keys = make_keys(days=30, quantity=1)
    members = [MemberFactory().member for _ in range(6)]
    barrier = threading.Barrier(len(members))
    outcomes, errors = [], []

    def run(member):
        try:
            barrier.wait()
            card_key_redeem(member=member, key=keys[0], client_ip="", now=timezone.now())
            outcomes.append("ok")
        except CardKeyError as exc:
            outcomes.append(exc.code)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(outcomes) == ["invalid_key"] * 5 + ["ok"]
    assert LedgerEntry.objects.filter(kind=LedgerKind.CARD_KEY).count() == 1


# --- Lock-out: counted before the check, whatever the concurrency --------------


def _wrong_keys_at_once(member, key: str, n: int) -> tuple[list[str], list[Exception]]:
    """``n`` threads, released together, each redeem ``key`` for ``member``."""
    barrier = threading.Barrier(n)
    outcomes, errors = [], []

    def run():
        try:
            barrier.wait()
            card_key_redeem(member=member, key=key, client_ip="203.0.113.9", now=timezone.now())
            outcomes.append("ok")
        except CardKeyError as exc:
            outcomes.append(exc.code)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, errors


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=5, CARD_KEY_IP_FAILURE_LIMIT=100)
def test_24_wrong_keys_at_once_get_at_most_the_limit_checked_on_postgres_and_redis():
    make_keys(quantity=1)
    member = MemberFactory().member
    outcomes, errors = _wrong_keys_at_once(member, "X" * KEY_LEN, 24)
    assert errors == []
    # Exactly the limit were looked up; every other attempt was refused.
    assert sorted(outcomes) == ["invalid_key"] * 5 + ["locked_out"] * 19
    with pytest.raises(CardKeyError) as exc:
        card_key_redeem(member=member, key="Y" * KEY_LEN, client_ip="", now=timezone.now())
    assert exc.value.code == "locked_out"


@pytest.mark.django_db(transaction=True)
@override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=5, CARD_KEY_IP_FAILURE_LIMIT=100)
def test_24_wrong_keys_at_once_get_at_most_the_limit_checked_on_the_embedded_cache(tmp_path):
    # The embedded default's file cache, even when the suite runs with Redis.
    embedded = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    member = MemberFactory().member
    with override_settings(CACHES=embedded):
        outcomes, errors = _wrong_keys_at_once(member, "nope", 24)
    assert errors == []
    assert sorted(outcomes) == ["invalid_key"] * 5 + ["locked_out"] * 19


@override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=2)
def test_a_refused_attempt_is_not_counted_and_a_right_key_clears_the_count():
    _b, keys = make_keys(quantity=2)
    member = MemberFactory().member
    now = timezone.now()
    with pytest.raises(CardKeyError):
        card_key_redeem(member=member, key="X" * KEY_LEN, client_ip="", now=now)
    card_key_redeem(member=member, key=keys[0], client_ip="", now=now)
    # The success cleared the count: two more wrong keys before the lock-out.
    for _ in range(2):
        with pytest.raises(CardKeyError) as exc:
            card_key_redeem(member=member, key="X" * KEY_LEN, client_ip="", now=now)
        assert exc.value.code == "invalid_key"
    for _ in range(3):
        with pytest.raises(CardKeyError) as exc:
            card_key_redeem(member=member, key=keys[1], client_ip="", now=now)
        assert exc.value.code == "locked_out"
    # The three refusals were not counted: one more allowed wrong key is
    # checked (and the right key stays unused).
    with override_settings(CARD_KEY_MEMBER_FAILURE_LIMIT=3), pytest.raises(CardKeyError) as exc:
        card_key_redeem(member=member, key="X" * KEY_LEN, client_ip="", now=now)
    assert exc.value.code == "invalid_key"
    assert CardKey.objects.filter(redeemed_at__isnull=True).count() == 1


def test_redemption_refuses_while_the_cache_is_down(monkeypatch):
    from compensation.services import card_keys

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(card_keys, "counter_hit", down)
    _b, keys = make_keys(quantity=1)
    with pytest.raises(CardKeyError) as exc:
        card_key_redeem(
            member=MemberFactory().member, key=keys[0], client_ip="", now=timezone.now()
        )
    assert exc.value.code == "try_later" and exc.value.retry_after == 60
    assert not CardKey.objects.filter(redeemed_at__isnull=False).exists()
