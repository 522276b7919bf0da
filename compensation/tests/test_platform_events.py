"""POST /api/v1/memberships/events/: a billing platform's purchases,
renewals, refunds and tier changes; idempotent by key, ordered by event
time, hostile input refused with clear 400s."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from compensation.models import EventStatus, LedgerEntry, LedgerKind, MembershipEvent
from compensation.services.nodes import node_create
from compensation.services.platforms import (
    platform_create,
    platform_revoke,
    platform_rotate_token,
)
from members.models import MemberProfile, User
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/memberships/events/"


@pytest.fixture
def platform():
    return platform_create(name="shop-billing", now=timezone.now())


def post(client, token, body):
    return client.post(
        URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def event(key, kind, member, *, at=None, **extra):
    at = at or timezone.now()
    return {"key": key, "type": kind, "member": member, "occurred_at": at.isoformat(), **extra}


def test_the_same_purchase_twice_adds_time_once(client, platform):
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    purchase = event("order-1", "purchase", member.member_no, days=30, tier="gold")
    first = post(client, token, {"events": [purchase]})
    assert first.status_code == 200, first.content
    result = first.json()["results"][0]
    assert result["status"] == "applied" and result["replayed"] is False
    again = post(client, token, {"events": [purchase, purchase]}).json()["results"]
    assert [r["replayed"] for r in again] == [True, True]
    assert {r["entry"] for r in again} == {result["entry"]}
    member.refresh_from_db()
    assert member.expires_at.isoformat() == result["expires_at"]
    assert LedgerEntry.objects.filter(member=member, kind=LedgerKind.PURCHASE).count() == 1
    assert member.tier == "gold"


def test_a_refund_before_its_purchase_and_the_purchase_twice_net_right_on_the_ledger(
    client, platform
):
    _p, token = platform
    now = timezone.now()
    member = MemberFactory(membership__expires_at=now + timedelta(days=5)).member
    before = member.expires_at
    refund = event(
        "refund-1", "refund", member.member_no, at=now - timedelta(minutes=5), refunds="order-2"
    )
    pending = post(client, token, {"events": [refund]}).json()["results"][0]
    assert pending["status"] == "pending" and pending["entry"] is None
    member.refresh_from_db()
    assert member.expires_at == before  # nothing moved yet
    purchase = event(
        "order-2", "purchase", member.member_no, at=now - timedelta(minutes=10), days=30
    )
    applied = post(client, token, {"events": [purchase]}).json()["results"][0]
    assert applied["status"] == "applied"
    twice = post(client, token, {"events": [purchase]}).json()["results"][0]
    assert twice["replayed"] is True and twice["entry"] == applied["entry"]
    member.refresh_from_db()
    assert member.expires_at == before  # +30 days, then -30 days, once
    kinds = list(
        LedgerEntry.objects.filter(member=member).order_by("seq").values_list("kind", "minutes")
    )
    assert kinds == [("opening", 0), ("purchase", 43200), ("refund", -43200)]
    replay = post(client, token, {"events": [refund]}).json()["results"][0]
    assert replay["status"] == "applied" and replay["replayed"] is True
    assert MembershipEvent.objects.get(key="refund-1").status == EventStatus.APPLIED
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()


def test_a_partial_refund_and_a_second_refund_of_the_same_purchase(client, platform):
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    events = [
        event("o", "renewal", member.member_no, days=30),
        event("r1", "refund", member.member_no, refunds="o", days=10),
        event("r2", "refund", member.member_no, refunds="o"),
    ]
    results = post(client, token, {"events": events}).json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied", "rejected"]
    assert results[2]["error"] == "already_refunded"
    member.refresh_from_db()
    entries = LedgerEntry.objects.filter(member=member).order_by("seq")
    assert [e.minutes for e in entries] == [30 * 1440, -10 * 1440]
    assert member.expires_at == entries.last().expires_after


def test_tier_follows_the_newest_event_time(client, platform):
    _p, token = platform
    now = timezone.now()
    member = MemberFactory(membership__expires_at=None).member
    newer = event("t2", "tier_change", member.member_no, at=now - timedelta(hours=1), tier="gold")
    older = event("t1", "tier_change", member.member_no, at=now - timedelta(hours=2), tier="silver")
    late_purchase = event(
        "p0", "purchase", member.member_no, at=now - timedelta(hours=3), days=1, tier="basic"
    )
    results = post(client, token, {"events": [newer, older, late_purchase]}).json()["results"]
    assert [r["status"] for r in results] == ["applied", "superseded", "applied"]
    member.refresh_from_db()
    assert member.tier == "gold"  # the purchase's time counted, its older tier did not
    assert results[2]["tier"] == "gold"


def test_unknown_members_are_created_pending_sign_in_or_rejected(client, platform):
    _p, token = platform
    body = {
        "events": [
            {
                "key": "o-new",
                "type": "purchase",
                "email": "New.Buyer@Example.com",
                "occurred_at": timezone.now().isoformat(),
                "days": 7,
            },
            event("o-ghost", "purchase", "KM99999999", days=7),
        ]
    }
    results = post(client, token, body).json()["results"]
    assert results[0]["status"] == "applied" and results[0]["member_created"] is True
    user = User.objects.get(email="new.buyer@example.com")
    assert not user.has_usable_password() and user.last_login is None
    assert results[0]["member"] == user.member.member_no
    assert results[1]["status"] == "rejected" and results[1]["error"] == "unknown_member"
    with override_settings(MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS="reject"):
        body["events"][0] |= {"key": "o-other", "email": "other@example.com"}
        refused = post(client, token, body).json()["results"][0]
    assert refused["error"] == "unknown_member"
    assert not User.objects.filter(email="other@example.com").exists()


def test_bad_items_are_named_and_the_good_ones_still_count(client, platform):
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    future = timezone.now() + timedelta(hours=1)
    events = [
        "not an object",
        {"key": "x", "type": "purchase", "member": member.member_no},
        event("no-days", "purchase", member.member_no),
        event("naive", "purchase", member.member_no, days=1) | {"occurred_at": "2026-11-30T10:00"},
        event("future", "purchase", member.member_no, at=future, days=1),
        event("ok", "purchase", member.member_no, days=1),
        event("ok", "purchase", member.member_no, days=2),  # same key, other content
        event("self", "refund", member.member_no, refunds="self"),
    ]
    results = post(client, token, {"events": events}).json()["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [r.get("error") for r in results] == [
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "occurred_in_future",
        None,
        "key_reused",
        "refund_target_invalid",
    ]
    assert "occurred_at" in results[1]["detail"] or "occurred_at" in results[3]["detail"]
    assert LedgerEntry.objects.filter(member=member).count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([1, 2], 400, "invalid_body"),
        ("null", 400, "invalid_body"),
        ({"events": "x"}, 400, "invalid"),
        ({"nothing": []}, 400, "invalid"),
        ({"events": [{}] * 501}, 400, "batch_too_large"),
    ],
)
def test_hostile_bodies_get_clear_400s(client, platform, body, status, code):
    _p, token = platform
    response = post(client, token, body)
    assert response.status_code == status and response.json()["error"] == code


def test_deep_json_and_garbage_are_400(client, platform):
    _p, token = platform
    deep = '{"events": ' + "[" * 5000 + "]" * 5000 + "}"
    for raw in (deep, "{not json", b"\xff\xfe"):
        response = client.post(
            URL, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert response.status_code == 400, raw[:20]
        assert response.json()["error"] in {"json_too_deep", "invalid_json"}


def test_only_a_live_platform_token_is_accepted(client, platform):
    plat, token = platform
    member = MemberFactory().member
    body = {"events": [event("k", "purchase", member.member_no, days=1)]}
    assert client.post(URL, body, content_type="application/json").status_code == 401
    _node, node_token = node_create(name="n1", now=timezone.now())
    assert post(client, node_token, body).status_code == 401
    client.force_login(member.user)  # a member session is not a platform
    assert client.post(URL, body, content_type="application/json").status_code in (401, 403)
    client.logout()
    new_token = platform_rotate_token(platform=plat, now=timezone.now())
    assert post(client, token, body).status_code == 401
    assert post(client, new_token, body).status_code == 200
    platform_revoke(platform=plat, now=timezone.now())
    assert post(client, new_token, body).status_code == 401
    # And a platform token is refused on node endpoints.
    assert (
        client.post(
            "/api/v1/heartbeats/",
            {"heartbeats": []},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {new_token}",
        ).status_code
        == 401
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_key_posted_concurrently_applies_once(platform):
    from django.test import Client

    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    body = {"events": [event("race", "purchase", member.member_no, days=30)]}
    barrier = threading.Barrier(4)
    statuses, errors = [], []

    def run():
        try:
            barrier.wait()
            response = post(Client(), token, body)
            statuses.append((response.status_code, response.json()["results"][0]["status"]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert statuses == [(200, "applied")] * 4
    assert LedgerEntry.objects.filter(member=member).count() == 1
    assert MemberProfile.objects.get(pk=member.pk).expires_at is not None
