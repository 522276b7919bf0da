"""Properties of the pure compensation arithmetic (``compensation.intervals``).

Instants are whole microseconds after ``T0``, so every interval set has an
exact measure. The oracles below compute it by brute force over the
elementary segments between endpoints, independently of the code under test.
"""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from compensation import intervals as iv

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
US = 10**6
HORIZON_SECONDS = 3 * 3600

PROPERTY = settings(max_examples=200, deadline=None)

# Three grains: a whole-minute grid (so intervals often touch and coincide),
# whole seconds, and microseconds (sub-minute and sub-second edges).
offsets_us = st.one_of(
    st.integers(0, HORIZON_SECONDS // 60).map(lambda m: m * 60 * US),
    st.integers(0, HORIZON_SECONDS).map(lambda s: s * US),
    st.integers(0, HORIZON_SECONDS * US),
)
instants = offsets_us.map(lambda us: T0 + timedelta(microseconds=us))

# Either order: reversed and zero-length pairs are empty intervals.
raw_intervals = st.one_of(
    st.tuples(instants, instants),
    instants.map(lambda t: (t, t)),
)


@st.composite
def touching_chains(draw):
    """Back-to-back intervals (each ends where the next starts), shuffled."""
    at = draw(instants)
    chain = []
    for step_us in draw(st.lists(st.integers(0, 3600 * US), max_size=6)):
        chain.append((at, at + timedelta(microseconds=step_us)))
        at += timedelta(microseconds=step_us)
    return draw(st.permutations(chain))


interval_lists = st.one_of(
    st.lists(raw_intervals, max_size=8),
    touching_chains(),
    st.tuples(touching_chains(), st.lists(raw_intervals, max_size=4)).map(lambda p: p[0] + p[1]),
)
ratios = st.integers(0, 1000).map(lambda hundredths: Decimal(hundredths).scaleb(-2))
lost_seconds = st.one_of(
    st.integers(-3600, 40 * 3600),
    st.integers(-US, 40 * 3600 * US).map(lambda us: timedelta(microseconds=us).total_seconds()),
)


# Independent oracles -------------------------------------------------------


def _covers(intervals, t):
    return any(s <= t < e for s, e in intervals)


def _boundaries(*interval_lists_):
    return sorted({t for intervals in interval_lists_ for pair in intervals for t in pair})


def _measure(predicate, *interval_lists_):
    """Exact length of the instants satisfying ``predicate``, which must be
    constant between consecutive endpoints of the given lists."""
    return sum(
        (b - a for a, b in pairwise(_boundaries(*interval_lists_)) if predicate(a)),
        timedelta(),
    )


def _union_length(intervals):
    return _measure(lambda t: _covers(intervals, t), intervals)


def _length(intervals):
    """Plain sum of lengths (equals the measure only for disjoint intervals)."""
    return sum((e - s for s, e in intervals), timedelta())


def _probes(*interval_lists_, extra=()):
    """Every endpoint and its microsecond neighbours: where a wrong open/closed
    edge or an off-by-one merge shows."""
    one = timedelta(microseconds=1)
    points = set(extra)
    for t in _boundaries(*interval_lists_):
        points.update((t - one, t, t + one))
    return points


def _assert_canonical(intervals):
    for s, e in intervals:
        assert s < e, f"empty interval {(s, e)}"
    for (_, prev_end), (next_start, _) in pairwise(intervals):
        assert prev_end < next_start, "intervals overlap, touch or are unsorted"


# normalize ------------------------------------------------------------------


@PROPERTY
@given(interval_lists)
def test_normalize_returns_sorted_disjoint_non_touching_non_empty_intervals(intervals):
    _assert_canonical(iv.normalize(intervals))


@PROPERTY
@given(interval_lists)
def test_normalize_is_idempotent(intervals):
    once = iv.normalize(intervals)
    assert iv.normalize(once) == once


@PROPERTY
@given(interval_lists, st.lists(instants, max_size=5))
def test_normalize_covers_exactly_the_instants_the_input_covered(intervals, extra):
    merged = iv.normalize(intervals)
    for t in _probes(intervals, extra=extra):
        assert _covers(merged, t) == _covers(intervals, t), t


@PROPERTY
@given(interval_lists)
def test_normalize_length_and_total_seconds_equal_the_measure_of_the_union(intervals):
    union = _union_length(intervals)
    assert _length(iv.normalize(intervals)) == union
    assert math.isclose(iv.total_seconds(intervals), union.total_seconds(), abs_tol=1e-6)


@PROPERTY
@given(st.data(), interval_lists)
def test_normalize_does_not_depend_on_input_order(data, intervals):
    shuffled = data.draw(st.permutations(intervals))
    assert iv.normalize(shuffled) == iv.normalize(intervals)


def test_normalize_merges_touching_and_drops_empty_and_reversed_intervals():
    m = [T0 + timedelta(minutes=k) for k in range(6)]
    assert iv.normalize([(m[2], m[3]), (m[0], m[1]), (m[1], m[2]), (m[4], m[4]), (m[5], m[4])]) == [
        (m[0], m[3])
    ]


# subtract -------------------------------------------------------------------


@PROPERTY
@given(interval_lists, interval_lists, st.lists(instants, max_size=5))
def test_subtract_never_returns_time_that_was_covered(intervals, minus, extra):
    rest = iv.subtract(intervals, minus)
    for t in _probes(intervals, minus, extra=extra):
        if _covers(rest, t):
            assert _covers(intervals, t), f"{t} was not in the input"
            assert not _covers(minus, t), f"{t} was covered by minus"


@PROPERTY
@given(interval_lists, interval_lists, st.lists(instants, max_size=5))
def test_subtract_keeps_every_instant_of_the_input_that_was_not_covered(intervals, minus, extra):
    rest = iv.subtract(intervals, minus)
    for t in _probes(intervals, minus, extra=extra):
        if _covers(intervals, t) and not _covers(minus, t):
            assert _covers(rest, t), t


@PROPERTY
@given(interval_lists, interval_lists)
def test_subtract_returns_canonical_intervals(intervals, minus):
    _assert_canonical(iv.subtract(intervals, minus))


@PROPERTY
@given(interval_lists, interval_lists)
def test_subtracted_length_plus_overlap_equals_the_input_length(intervals, minus):
    overlap = _measure(lambda t: _covers(intervals, t) and _covers(minus, t), intervals, minus)
    rest = iv.subtract(intervals, minus)
    assert _length(rest) + overlap == _union_length(intervals)
    assert math.isclose(
        iv.total_seconds(rest) + overlap.total_seconds(),
        iv.total_seconds(intervals),
        abs_tol=1e-6,
    )


@PROPERTY
@given(interval_lists)
def test_subtracting_nothing_is_normalize(intervals):
    assert iv.subtract(intervals, []) == iv.normalize(intervals)


@PROPERTY
@given(interval_lists)
def test_subtracting_intervals_from_themselves_leaves_nothing(intervals):
    assert iv.subtract(intervals, intervals) == []


def test_subtract_cuts_a_hole_out_of_the_middle_with_half_open_edges():
    m = [T0 + timedelta(minutes=k) for k in range(10)]
    assert iv.subtract([(m[0], m[9])], [(m[2], m[4]), (m[6], m[7])]) == [
        (m[0], m[2]),
        (m[4], m[6]),
        (m[7], m[9]),
    ]


# Union rule: each lost minute is paid once -----------------------------------


def _pay_in_order(claims):
    """What the credit service does: each claim is paid for what earlier
    claims did not already cover."""
    covered, paid = [], []
    for claim in claims:
        piece = iv.subtract(claim, covered)
        paid.append(piece)
        covered = iv.normalize([*covered, *claim])
    return paid


@PROPERTY
@given(st.data(), st.lists(interval_lists, max_size=6))
def test_each_lost_instant_is_paid_once_whatever_order_claims_arrive_in(data, claims):
    everything = [pair for claim in claims for pair in claim]
    union = _union_length(everything)
    for order in (claims, data.draw(st.permutations(claims))):
        paid = _pay_in_order(order)
        assert sum((_length(piece) for piece in paid), timedelta()) == union
        assert math.isclose(
            sum(iv.total_seconds(piece) for piece in paid),
            iv.total_seconds(everything),
            abs_tol=1e-6,
        )
        for claim, piece in zip(order, paid, strict=True):
            assert iv.subtract(piece, claim) == [], "paid for time the claim did not lose"


def test_a_repeated_claim_is_paid_nothing_the_second_time():
    claim = [(T0, T0 + timedelta(minutes=12))]
    first, second = _pay_in_order([claim, claim])
    assert iv.total_seconds(first) == 720
    assert second == []


# clip -----------------------------------------------------------------------


def _window_bound(data, intervals):
    """None, any instant, or (often) one of the intervals' own endpoints, where
    a clip could leave a zero-length sliver."""
    choices = [st.none(), instants]
    if intervals:
        choices.append(st.sampled_from(_boundaries(intervals)))
    return data.draw(st.one_of(choices))


@PROPERTY
@given(st.data(), interval_lists, st.lists(instants, max_size=5))
def test_clip_keeps_exactly_the_covered_instants_inside_the_window(data, intervals, extra):
    start, end = _window_bound(data, intervals), _window_bound(data, intervals)
    clipped = iv.clip(intervals, start=start, end=end)
    _assert_canonical(clipped)
    for s, e in clipped:
        assert start is None or s >= start
        assert end is None or e <= end
    bounds = [t for t in (start, end) if t is not None]
    for t in _probes(intervals, [(b, b) for b in bounds], extra=extra):
        inside = (start is None or t >= start) and (end is None or t < end)
        assert _covers(clipped, t) == (inside and _covers(intervals, t)), t


@PROPERTY
@given(interval_lists)
def test_clip_without_bounds_is_normalize(intervals):
    assert iv.clip(intervals, start=None, end=None) == iv.normalize(intervals)


def test_clip_to_expiry_keeps_only_the_part_of_a_loss_inside_the_paid_period():
    expires_at = T0 + timedelta(minutes=30)
    loss = [(T0 + timedelta(minutes=20), T0 + timedelta(minutes=50))]
    assert iv.clip(loss, start=None, end=expires_at) == [(T0 + timedelta(minutes=20), expires_at)]
    assert iv.clip(loss, start=None, end=T0 + timedelta(minutes=20)) == []


# envelope -------------------------------------------------------------------


@PROPERTY
@given(interval_lists)
def test_envelope_is_the_smallest_interval_containing_all_covered_time(intervals):
    merged = iv.normalize(intervals)
    span = iv.envelope(intervals)
    if not merged:
        assert span is None
        return
    start, end = span
    assert all(start <= s and e <= end for s, e in merged)
    assert _covers(merged, start)
    assert _covers(merged, end - timedelta(microseconds=1))


# minutes_from_seconds -------------------------------------------------------


@PROPERTY
@given(lost_seconds)
def test_a_started_minute_counts_as_a_whole_one_at_ratio_one(seconds):
    minutes = iv.minutes_from_seconds(seconds, Decimal("1.00"))
    if seconds <= 0:
        assert minutes == 0
    else:
        # Sub-microsecond float dust is not a started minute.
        assert (minutes - 1) * 60 < round(seconds, 6) <= minutes * 60


@PROPERTY
@given(lost_seconds, ratios)
def test_credited_minutes_never_fall_short_of_the_loss_times_the_ratio(seconds, ratio):
    minutes = iv.minutes_from_seconds(seconds, ratio)
    assert minutes >= 0
    if seconds > 0:
        exact = Decimal(str(round(seconds, 6))) * ratio
        assert minutes * 60 >= exact
        # Rounding is up to the started minute of the started second: never
        # more than one minute beyond that.
        started_seconds = Decimal(math.ceil(round(seconds, 6))) * ratio
        assert (minutes - 1) * 60 < started_seconds


@PROPERTY
@given(lost_seconds, lost_seconds, ratios)
def test_more_lost_time_never_credits_fewer_minutes(a, b, ratio):
    low, high = sorted((a, b))
    assert iv.minutes_from_seconds(low, ratio) <= iv.minutes_from_seconds(high, ratio)


@PROPERTY
@given(lost_seconds, ratios, ratios)
def test_a_higher_ratio_never_credits_fewer_minutes(seconds, a, b):
    low, high = sorted((a, b))
    assert iv.minutes_from_seconds(seconds, low) <= iv.minutes_from_seconds(seconds, high)


@PROPERTY
@given(st.integers(0, 40 * 60))
def test_whole_minutes_at_ratio_one_are_credited_exactly(minutes):
    assert iv.minutes_from_seconds(minutes * 60, Decimal("1.0")) == minutes
    assert iv.minutes_from_seconds(float(minutes * 60), Decimal("1.00")) == minutes
    as_interval = [(T0, T0 + timedelta(minutes=minutes))]
    assert iv.minutes_from_seconds(iv.total_seconds(as_interval), Decimal("1.0")) == minutes


@PROPERTY
@given(st.integers(-40 * 3600, 0), ratios)
def test_no_lost_time_credits_nothing(seconds, ratio):
    assert iv.minutes_from_seconds(seconds, ratio) == 0


@PROPERTY
@given(lost_seconds)
def test_a_zero_ratio_credits_nothing(seconds):
    assert iv.minutes_from_seconds(seconds, Decimal("0.00")) == 0


def test_one_second_past_twelve_minutes_credits_thirteen():
    assert iv.minutes_from_seconds(720, Decimal("1.0")) == 12
    assert iv.minutes_from_seconds(721, Decimal("1.0")) == 13
    assert iv.minutes_from_seconds(720.000001, Decimal("1.0")) == 13
    assert iv.minutes_from_seconds(1, Decimal("1.0")) == 1


def test_float_dust_from_summing_intervals_is_not_an_extra_minute():
    assert iv.minutes_from_seconds(720.0000000001, Decimal("1.0")) == 12
    assert iv.minutes_from_seconds(719.9999999999, Decimal("1.0")) == 12
    pieces = [
        (T0 + timedelta(seconds=0.1 * k), T0 + timedelta(seconds=0.1 * (k + 1)))
        for k in range(7200)
    ]
    assert (
        iv.minutes_from_seconds(sum((e - s).total_seconds() for s, e in pieces), Decimal("1.0"))
        == 12
    )


def test_ratio_one_and_a_half_is_exact():
    assert iv.minutes_from_seconds(600, Decimal("1.5")) == 15
    assert iv.minutes_from_seconds(601, Decimal("1.5")) == 16


# calculate_credit -----------------------------------------------------------

caps = st.integers(-10, 20_000)


def _credit(seconds, ratio, cap_event, cap_window, already):
    return iv.calculate_credit(
        lost_seconds=seconds,
        ratio=ratio,
        cap_per_event_minutes=cap_event,
        cap_window_minutes=cap_window,
        already_credited_in_window=already,
    )


credit_inputs = st.tuples(lost_seconds, ratios, caps, caps, caps)


@PROPERTY
@given(credit_inputs)
def test_credited_minutes_never_exceed_raw_minutes_or_the_per_event_cap(inputs):
    seconds, ratio, cap_event, _cap_window, _already = inputs
    calc = _credit(*inputs)
    assert calc.raw_minutes == iv.minutes_from_seconds(seconds, ratio)
    assert calc.credited_minutes <= calc.raw_minutes
    assert calc.credited_minutes <= max(cap_event, 0)


@PROPERTY
@given(credit_inputs)
def test_credit_never_pushes_the_window_total_past_the_window_cap(inputs):
    _seconds, _ratio, _cap_event, cap_window, already = inputs
    calc = _credit(*inputs)
    if 0 <= already <= cap_window:
        assert calc.credited_minutes + already <= cap_window
    if already >= cap_window:
        assert calc.credited_minutes == 0


@PROPERTY
@given(credit_inputs)
def test_caps_withhold_only_what_they_must(inputs):
    _seconds, _ratio, cap_event, cap_window, already = inputs
    calc = _credit(*inputs)
    if calc.credited_minutes < calc.raw_minutes:
        event_binds = calc.credited_minutes == max(cap_event, 0)
        window_binds = calc.credited_minutes == max(cap_window - max(already, 0), 0)
        assert event_binds or window_binds
    # The per-event cap applies first; the window cap takes only the rest.
    assert calc.event_capped_minutes == max(calc.raw_minutes - max(cap_event, 0), 0)


@PROPERTY
@given(credit_inputs)
def test_raw_minutes_are_split_into_credited_and_withheld_without_loss(inputs):
    calc = _credit(*inputs)
    assert calc.raw_minutes == (
        calc.credited_minutes + calc.event_capped_minutes + calc.window_capped_minutes
    )
    assert calc.withheld_minutes == calc.event_capped_minutes + calc.window_capped_minutes
    assert calc.withheld_minutes == calc.raw_minutes - calc.credited_minutes


@PROPERTY
@given(credit_inputs)
def test_no_credit_field_is_ever_negative(inputs):
    calc = _credit(*inputs)
    assert calc.lost_seconds >= 0
    assert calc.raw_minutes >= 0
    assert calc.event_capped_minutes >= 0
    assert calc.window_capped_minutes >= 0
    assert calc.credited_minutes >= 0
    assert calc.withheld_minutes >= 0


@PROPERTY
@given(lost_seconds)
def test_recorded_lost_seconds_count_a_started_second(seconds):
    calc = _credit(seconds, Decimal("1.00"), 1440, 10_080, 0)
    if seconds <= 0:
        assert calc.lost_seconds == 0
    else:
        assert calc.lost_seconds - 1 < round(seconds, 6) <= calc.lost_seconds


# DESIGN section 5 defaults: ratio 1.0, 24 h per event, 7 days per 30 days.
CAP_PER_EVENT = 24 * 60
CAP_WINDOW = 7 * 24 * 60


def test_twelve_minute_loss_at_ratio_one_credits_twelve_minutes():
    lost = iv.total_seconds([(T0 + timedelta(minutes=10), T0 + timedelta(minutes=22))])
    calc = _credit(lost, Decimal("1.0"), CAP_PER_EVENT, CAP_WINDOW, 0)
    assert calc.lost_seconds == 720
    assert calc.credited_minutes == 12
    assert calc.withheld_minutes == 0


def test_thirty_hour_loss_is_capped_at_twenty_four_hours():
    calc = _credit(30 * 3600, Decimal("1.0"), CAP_PER_EVENT, CAP_WINDOW, 0)
    assert calc.raw_minutes == 1800
    assert calc.credited_minutes == 1440
    assert calc.event_capped_minutes == 360
    assert calc.window_capped_minutes == 0
    assert calc.withheld_minutes == 360


def test_window_cap_credits_only_the_room_left_in_the_thirty_days():
    assert CAP_WINDOW == 10_080
    calc = _credit(200 * 60, Decimal("1.0"), CAP_PER_EVENT, CAP_WINDOW, 10_000)
    assert calc.credited_minutes == 80
    assert calc.event_capped_minutes == 0
    assert calc.window_capped_minutes == 120
    assert calc.withheld_minutes == 120


def test_a_full_window_credits_nothing_and_withholds_everything():
    calc = _credit(600, Decimal("1.0"), CAP_PER_EVENT, CAP_WINDOW, CAP_WINDOW + 5)
    assert calc.credited_minutes == 0
    assert calc.window_capped_minutes == 10


# extend_expiry --------------------------------------------------------------

credit_minutes = st.integers(0, 20_000)


def _extend(expires_at, minutes, credited_at, flag):
    return iv.extend_expiry(
        expires_at=expires_at,
        minutes=minutes,
        credited_at=credited_at,
        lapsed_extends_from_credit_time=flag,
    )


@PROPERTY
@given(instants, instants, credit_minutes, st.booleans())
def test_active_membership_is_extended_from_its_old_expiry(a, b, minutes, flag):
    credited_at, expires_at = sorted((a, b))  # still active when credited
    assert _extend(expires_at, minutes, credited_at, flag) == expires_at + timedelta(
        minutes=minutes
    )


@PROPERTY
@given(instants, instants, credit_minutes)
def test_lapsed_membership_is_extended_from_crediting_time_when_policy_says(a, b, minutes):
    expires_at, credited_at = sorted((a, b))
    if expires_at == credited_at:
        credited_at += timedelta(microseconds=1)  # strictly lapsed
    new = _extend(expires_at, minutes, credited_at, True)
    assert new == credited_at + timedelta(minutes=minutes)
    # The member can use every credited minute from now on.
    assert new - max(expires_at, credited_at) == timedelta(minutes=minutes)


@PROPERTY
@given(instants, instants, credit_minutes)
def test_without_the_lapsed_rule_expiry_always_extends_from_the_old_expiry(
    expires_at, credited_at, minutes
):
    assert _extend(expires_at, minutes, credited_at, False) == expires_at + timedelta(
        minutes=minutes
    )


@PROPERTY
@given(instants, instants, credit_minutes, st.booleans())
def test_extension_adds_exactly_the_credited_minutes_and_never_less(
    expires_at, credited_at, minutes, flag
):
    new = _extend(expires_at, minutes, credited_at, flag)
    assert new - timedelta(minutes=minutes) in (expires_at, credited_at)
    assert new >= expires_at + timedelta(minutes=minutes)
