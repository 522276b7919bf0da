"""The compensation service: union of sources, paid period, ratio, caps, coupons."""

from datetime import timedelta
from decimal import Decimal

import pytest

from compensation.models import (
    Claim,
    Coupon,
    IncidentKind,
    IncidentScope,
    LedgerEntry,
    Outcome,
    SourceKind,
)
from compensation.services.credit import compensation_credit
from compensation.services.incidents import incident_declare
from compensation.services.policy import policy_publish
from compensation.services.reversals import ledger_reverse
from compensation.tests.conftest import T0
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)


def _member(days=30, **kw):
    return MemberFactory(membership__expires_at=T0 + timedelta(days=days), **kw).member


def _credit(member, start, end, key, source=SourceKind.DISCONNECT, now=NOW, **kw):
    return compensation_credit(
        member_id=member.pk,
        intervals=[(T0 + timedelta(minutes=start), T0 + timedelta(minutes=end))],
        source_kind=source,
        source_ref=key,
        idempotency_key=key,
        now=now,
        **kw,
    )


def test_same_key_twice_pays_once():
    member = _member()
    before = member.expires_at
    first = _credit(member, 0, 30, "k1")
    second = _credit(member, 0, 30, "k1")
    assert first.pk == second.pk
    member.refresh_from_db()
    assert member.expires_at == before + timedelta(minutes=30)
    assert LedgerEntry.objects.exclude(kind="opening").count() == 1


def test_overlapping_sources_pay_the_union_once():
    member = _member()
    before = member.expires_at
    _credit(member, 0, 30, "own")
    claim = _credit(member, 20, 50, "incident", source=SourceKind.INCIDENT)
    assert claim.credited_minutes == 20  # only 30 -> 50 was new
    covered_again = _credit(member, 5, 45, "appeal", source=SourceKind.APPEAL)
    assert covered_again.outcome == Outcome.COVERED
    assert covered_again.entry is None
    member.refresh_from_db()
    assert member.expires_at == before + timedelta(minutes=50)


def test_own_disconnect_inside_a_declared_incident_is_paid_once(django_capture_on_commit_callbacks):
    from kamen_portal.celery import app

    app.conf.task_always_eager = True
    try:
        member = _member()
        before = member.expires_at
        _credit(member, 10, 25, "disconnect:x")
        with django_capture_on_commit_callbacks(execute=True):
            incident_declare(
                kind=IncidentKind.MAINTENANCE,
                scope=IncidentScope.ALL,
                node_ids=[],
                started_at=T0,
                ended_at=T0 + timedelta(minutes=60),
                ratio=None,
                title_zh="维护",
                title_en="Maintenance",
                actor=None,
                now=NOW,
            )
    finally:
        app.conf.task_always_eager = False
    member.refresh_from_db()
    assert member.expires_at == before + timedelta(minutes=60)
    assert (
        sum(
            LedgerEntry.objects.exclude(kind="opening")
            .filter(member=member)
            .values_list("minutes", flat=True)
        )
        == 60
    )


def test_incident_ratio_applies():
    member = _member()
    claim = _credit(member, 0, 10, "inc", source=SourceKind.INCIDENT, ratio=Decimal("1.5"))
    assert claim.credited_minutes == 15


def test_rounding_is_up_to_the_next_minute():
    member = _member()
    claim = compensation_credit(
        member_id=member.pk,
        intervals=[(T0, T0 + timedelta(minutes=12, seconds=1))],
        source_kind=SourceKind.DISCONNECT,
        source_ref="r",
        idempotency_key="r",
        now=NOW,
    )
    assert claim.credited_minutes == 13


def test_cap_per_event_withholds_and_records_it():
    member = _member()
    claim = _credit(member, 0, 30 * 60, "long")
    assert claim.credited_minutes == 24 * 60
    assert claim.event_capped_minutes == 6 * 60
    assert claim.outcome == Outcome.PARTLY_CAPPED


def test_rolling_window_cap():
    member = _member(days=60)
    policy_publish(changes={"cap_window_minutes": 100}, actor=None, note="test", now=NOW)
    first = _credit(member, 0, 80, "a")
    second = _credit(member, 100, 150, "b")
    third = _credit(member, 200, 230, "c")
    assert first.credited_minutes == 80
    assert (second.credited_minutes, second.window_capped_minutes) == (20, 30)
    assert (third.credited_minutes, third.outcome) == (0, Outcome.CAPPED)
    # Outside the window the room is back.
    later = _credit(member, 300, 310, "d", now=NOW + timedelta(days=31))
    assert later.credited_minutes == 10


def test_membership_expired_before_the_loss_is_not_eligible():
    member = MemberFactory(membership__expires_at=T0 - timedelta(minutes=1)).member
    claim = _credit(member, 0, 30, "x")
    assert claim.outcome == Outcome.NOT_ELIGIBLE
    assert not LedgerEntry.objects.exclude(kind="opening").exists()


def test_lapsed_membership_is_extended_from_the_time_of_crediting():
    member = MemberFactory(membership__expires_at=T0 + timedelta(minutes=20)).member
    claim = _credit(member, 0, 10, "x", now=T0 + timedelta(hours=5))
    member.refresh_from_db()
    assert claim.credited_minutes == 10
    assert member.expires_at == T0 + timedelta(hours=5, minutes=10)


def test_policy_can_extend_lapsed_memberships_from_the_old_expiry():
    policy_publish(changes={"lapsed_extends_from_credit_time": False}, actor=None, note="", now=NOW)
    member = MemberFactory(membership__expires_at=T0 + timedelta(minutes=20)).member
    _credit(member, 0, 10, "x", now=T0 + timedelta(hours=5))
    member.refresh_from_db()
    assert member.expires_at == T0 + timedelta(minutes=30)


def test_every_credit_records_the_policy_version():
    member = _member()
    v2 = policy_publish(changes={"ratio_own": Decimal("2.00")}, actor=None, note="double", now=NOW)
    claim = _credit(member, 0, 10, "x")
    assert claim.credited_minutes == 20
    assert claim.entry.policy_version == v2.version == 2


def test_third_compensated_disconnect_in_a_week_earns_one_coupon():
    member = _member()
    for i in range(3):
        _credit(member, i * 100, i * 100 + 10, f"disconnect:{i}")
    assert Coupon.objects.filter(member=member).count() == 1
    _credit(member, 500, 510, "disconnect:4")
    assert Coupon.objects.filter(member=member).count() == 1  # at most one per window
    coupon = Coupon.objects.get()
    assert coupon.code.startswith("KMC-")
    assert coupon.expires_at > coupon.issued_at


def test_incident_credits_do_not_count_towards_the_coupon():
    member = _member()
    for i in range(3):
        _credit(member, i * 100, i * 100 + 10, f"incident:{i}", source=SourceKind.INCIDENT)
    assert not Coupon.objects.exists()


def test_reversal_is_a_new_entry_and_takes_the_time_back():
    member = _member()
    before = member.expires_at
    claim = _credit(member, 0, 30, "x")
    reversal = ledger_reverse(entry=claim.entry, note="duplicate by mistake", now=NOW)
    member.refresh_from_db()
    assert reversal.minutes == -30
    assert reversal.reverses_id == claim.entry.pk
    assert member.expires_at == before
    assert LedgerEntry.objects.exclude(kind="opening").count() == 2
    with pytest.raises(ValueError):
        ledger_reverse(entry=claim.entry, note="again", now=NOW)


def test_ledger_rows_refuse_updates_and_deletes_in_the_orm():
    member = _member()
    entry = _credit(member, 0, 30, "x").entry
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).update(minutes=999)
    with pytest.raises(TypeError):
        LedgerEntry.objects.all().delete()


def test_claims_are_recorded_even_when_nothing_is_paid():
    member = _member()
    _credit(member, 0, 10, "a")
    _credit(member, 0, 10, "b")
    assert list(Claim.objects.order_by("pk").values_list("outcome", flat=True)) == [
        Outcome.CREDITED,
        Outcome.COVERED,
    ]
