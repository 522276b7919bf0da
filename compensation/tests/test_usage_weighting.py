"""Personalised compensation (issue 14 items 1-4): usage-weighted credit is
never below the base credit, never above the ceiling, still pays each lost
minute once, is explained on the receipt, the page and the API, and changes
nothing while the policy option is off."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compensation import intervals as iv
from compensation import usage_weighting as uw
from compensation.ledger import entry_body
from compensation.models import CoveredSpan, LedgerEntry, SourceKind, UsageProfile
from compensation.receipts import receipt_for
from compensation.services.credit import compensation_credit
from compensation.services.policy import policy_publish
from compensation.services.usage import usage_add
from members.services.exports import _collect
from members.tests.factories import MemberFactory

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
# A Monday, 20:00 in Shanghai.
EVENING = datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI)
NOW = EVENING + timedelta(hours=3)


def evening_weeks(today) -> dict:
    """Four weeks of a member who plays 20:00-23:00 every evening (local)."""
    weeks: dict = {}
    for day in range(28):
        for hour in (20, 21, 22):
            at = datetime.combine(today - timedelta(days=day), datetime.min.time()).replace(
                hour=hour, tzinfo=SHANGHAI
            )
            weeks = uw.add_minutes(weeks, at_local=at, minutes=55, window_days=28)
    return weeks


# --- the pure arithmetic ------------------------------------------------------

profiles = st.lists(st.integers(0, 240), min_size=168, max_size=168)
ceilings = st.decimals(min_value=1, max_value=5, places=2)
ratios = st.sampled_from([Decimal("1.00"), Decimal("1.50"), Decimal("0.50")])


@st.composite
def lost_intervals(draw):
    base = datetime(2026, 11, 16, tzinfo=UTC)
    out = []
    for _ in range(draw(st.integers(1, 3))):
        start = base + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
        out.append((start, start + timedelta(seconds=draw(st.integers(1, 6 * 3600)))))
    return iv.normalize(out)


@given(profile=profiles, ceiling=ceilings, ratio=ratios, lost=lost_intervals())
@settings(max_examples=300, deadline=None)
def test_weighted_credit_is_between_the_base_and_the_ceiling(profile, ceiling, ratio, lost):
    weighting = uw.weigh(lost, profile=profile, ceiling=ceiling, timezone="Asia/Shanghai")
    factor = weighting.factor if weighting else Decimal(1)
    assert Decimal(1) <= factor <= max(ceiling, Decimal(1))
    seconds = iv.total_seconds(lost)
    base = iv.minutes_from_seconds(seconds, ratio)
    weighted = iv.minutes_from_seconds(seconds, ratio * factor)
    assert base <= weighted <= iv.minutes_from_seconds(seconds, ratio * max(ceiling, 1))
    # Caps apply after weighting.
    capped = iv.calculate_credit(
        lost_seconds=seconds,
        ratio=ratio * factor,
        cap_per_event_minutes=60,
        cap_window_minutes=10_000,
        already_credited_in_window=0,
    )
    assert capped.credited_minutes <= 60


def test_a_loss_outside_the_habit_or_a_thin_profile_is_not_weighted():
    weeks = evening_weeks(EVENING.date())
    profile = uw.fold(weeks, today=EVENING.date(), window_days=28)
    morning = EVENING.replace(hour=4)
    assert (
        uw.weigh(
            [(morning, morning + timedelta(minutes=30))],
            profile=profile,
            ceiling=Decimal(2),
            timezone="Asia/Shanghai",
        )
        is None
    )
    thin = [0] * 168
    thin[20] = 30
    assert (
        uw.weigh(
            [(EVENING, EVENING + timedelta(minutes=30))], profile=thin, ceiling=2, timezone="UTC"
        )
        is None
    )


def test_the_rolling_window_drops_old_weeks():
    weeks = evening_weeks(EVENING.date())
    later = EVENING.date() + timedelta(days=60)
    assert uw.fold(weeks, today=later, window_days=28) == [0] * 168


# --- the credit -----------------------------------------------------------------


@pytest.fixture
def weighting_on(db):
    return policy_publish(
        changes={"usage_weighting": True, "usage_weight_ceiling": Decimal("2.00")},
        actor=None,
        note="Usage weighting on",
        now=NOW - timedelta(days=1),
    )


def _member(*, evening: bool):
    member = MemberFactory(membership__expires_at=NOW + timedelta(days=30)).member
    assert member.timezone == "Asia/Shanghai"
    if evening:
        UsageProfile.objects.create(
            member=member, weeks=evening_weeks(EVENING.date()), updated_at=NOW
        )
    return member


def _lose(member, start, minutes, ref):
    return compensation_credit(
        member_id=member.pk,
        intervals=[(start, start + timedelta(minutes=minutes))],
        source_kind=SourceKind.DISCONNECT,
        source_ref=ref,
        idempotency_key=f"test:{ref}:{member.pk}",
        now=NOW,
    )


def test_the_evening_user_is_credited_more_for_the_same_evening_loss(weighting_on, client):
    regular, stranger = _member(evening=True), _member(evening=False)
    a = _lose(regular, EVENING, 30, "evening")
    b = _lose(stranger, EVENING, 30, "evening")
    assert b.credited_minutes == 30
    assert a.credited_minutes > b.credited_minutes
    assert a.credited_minutes <= 60  # the ceiling (2.00)
    entry = a.entry
    assert entry.weighting["habit_from"] == "20:00" and entry.weighting["habit_to"] == "23:00"
    assert Decimal(entry.weighting["factor"]) * 30 <= a.credited_minutes
    assert b.entry.weighting is None

    # The receipt explains it, in the reader's language; the factor is hashed.
    receipt = receipt_for(LedgerEntry.objects.select_related("member").get(pk=entry.pk))
    assert receipt["entry"]["weighting"]["factor"] == entry.weighting["factor"]
    assert "20:00–23:00" in receipt["usage_weighting"]["explanation"]
    assert "weighting" not in entry_body(b.entry, member_no=stranger.member_no, reverses_seq=None)

    client.force_login(regular.user)
    page = client.get("/my/compensation/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "您通常在 20:00–23:00 使用" in page
    api = client.get("/api/v1/me/compensations/").json()
    rows = api["results"] if isinstance(api, dict) else api
    assert rows[0]["usage_factor"] == entry.weighting["factor"]
    assert "20:00" in rows[0]["usage_explanation"]
    body = client.get(f"/my/compensation/{entry.public_id}/receipt.json").content
    assert json.loads(body)["usage_weighting"]["factor"] == entry.weighting["factor"]

    out = StringIO()
    call_command("verify_ledger", stdout=out)


def test_with_the_option_off_credits_are_unchanged(db):
    regular, stranger = _member(evening=True), _member(evening=False)
    a = _lose(regular, EVENING, 30, "off")
    b = _lose(stranger, EVENING, 30, "off")
    assert a.credited_minutes == b.credited_minutes == 30
    assert a.entry.weighting is None
    call_command("verify_ledger", stdout=StringIO())


@given(
    spans=st.lists(st.tuples(st.integers(-120, 240), st.integers(1, 180)), min_size=1, max_size=4)
)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_weighted_credit_still_pays_each_lost_minute_once(weighting_on, spans):
    member = _member(evening=True)
    claimed = []
    for i, (offset, minutes) in enumerate(spans):
        start = EVENING + timedelta(minutes=offset)
        claim = compensation_credit(
            member_id=member.pk,
            intervals=[(start, start + timedelta(minutes=minutes))],
            source_kind=[SourceKind.DISCONNECT, SourceKind.INCIDENT][i % 2],
            source_ref=f"src{i}",
            idempotency_key=f"once:{member.pk}:{i}",
            now=NOW,
        )
        claimed.append((start, start + timedelta(minutes=minutes)))
        # Never less than the base credit of what this claim newly covers.
        new_seconds = iv.total_seconds([tuple(map(datetime.fromisoformat, p)) for p in claim.paid])
        assert claim.credited_minutes >= iv.minutes_from_seconds(new_seconds, Decimal(1))
    spans_paid = list(CoveredSpan.objects.filter(member=member).values_list("start", "end"))
    # Covered spans never overlap: each lost second was paid by one claim.
    assert iv.total_seconds(spans_paid) == sum((e - s).total_seconds() for s, e in spans_paid)
    assert iv.normalize(spans_paid) == iv.normalize(claimed)


def test_the_calculator_uses_the_signed_in_members_own_hours(weighting_on, client):
    regular = _member(evening=True)
    query = {"minutes": 30, "source": "disconnect", "start": "2026-11-23T20:00"}
    anonymous = client.get("/policy/", query).content.decode()
    assert 'data-testid="usage-rule"' in anonymous
    assert 'data-testid="quote-usage"' not in anonymous
    client.force_login(regular.user)
    page = client.get("/policy/", query, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'data-testid="quote-usage"' in page and "20:00–23:00" in page
    # A malformed time is a form error, not a 500.
    bad = client.get("/policy/", {**query, "start": "yesterday"})
    assert bad.status_code == 200


def test_usage_profile_is_exported_and_deleted_with_the_member(db):
    member = _member(evening=False)
    usage_add(member_ids=[member.pk], at=EVENING, minutes=5, now=NOW)
    files = _collect(member.user)
    rows = json.loads(files["usage_profile.json"])
    assert rows == [
        {
            "week_starting": "2026-11-23",
            "weekday": "Mon",
            "hour": "20:00",
            "active_minutes": 5,
            "timezone": "Asia/Shanghai",
        }
    ]
    # A member with ledger entries is never deleted (the ledger is
    # append-only); an account that never had time is, and its profile goes.
    never_paid = MemberFactory(membership__expires_at=None).member
    usage_add(member_ids=[never_paid.pk], at=EVENING, minutes=5, now=NOW)
    assert UsageProfile.objects.filter(member=never_paid).exists()
    never_paid.user.delete()
    assert not UsageProfile.objects.filter(member_id=never_paid.pk).exists()
    assert UsageProfile.objects.filter(member=member).exists()
