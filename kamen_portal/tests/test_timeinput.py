"""The one time parser (kamen_portal/timeinput.py): every time it accepts is
an instant PostgreSQL stores and psycopg reads back unchanged; everything
else is a TimeInputError with a reason, never another exception. Properties
over extreme years, offsets, leap seconds, ``Z``, fractions and garbage; they
run on SQLite (pure) and the round trip on PostgreSQL."""

import calendar
import importlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework import serializers

from kamen_portal import product_settings
from kamen_portal.timeinput import (
    MAX_OFFSET,
    BoundedDateTimeField,
    BoundedFormDateTimeField,
    BoundedSplitDateTimeField,
    TimeInputError,
    check_instant,
    parse_instant,
)

LOW, HIGH = 2000, 2100  # the defaults
MINUTES = 14 * 60

offsets = st.integers(min_value=-MINUTES, max_value=MINUTES).map(
    lambda m: timezone(timedelta(minutes=m))
)
# Wall-clock times as written (hypothesis wants naive bounds; the offset is
# drawn on its own).
WALL_LOW = datetime(LOW, 1, 1)  # noqa: DTZ001
WALL_HIGH = datetime(HIGH, 12, 31, 23, 59, 59, 999_999)  # noqa: DTZ001
in_range = st.datetimes(min_value=WALL_LOW, max_value=WALL_HIGH)


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _reason(raw) -> str:
    with pytest.raises(TimeInputError) as caught:
        parse_instant(raw)
    assert caught.value.code == "invalid"
    return caught.value.reason


@given(local=in_range, tz=offsets)
@example(local=WALL_LOW, tz=timezone(MAX_OFFSET))
@example(local=WALL_HIGH, tz=timezone(-MAX_OFFSET))
def test_every_time_in_bounds_reads_back_as_the_same_instant_in_utc(local, tz):
    value = local.replace(tzinfo=tz)
    parsed = parse_instant(value.isoformat())
    assert parsed == value
    assert parsed.utcoffset() == timedelta(0)


@given(local=in_range)
def test_z_lowercase_and_a_space_mean_the_same_as_plus_zero(local):
    text = local.replace(microsecond=0).isoformat()
    expected = parse_instant(text + "+00:00")
    for spelling in (text + "Z", text + "z", text.replace("T", " ") + "Z", text + "-00:00"):
        assert parse_instant(spelling) == expected
    assert parse_instant(text + "+0000") == expected == parse_instant(text + "+00")


@given(
    year=st.integers(min_value=1, max_value=9999).filter(lambda y: not LOW <= y <= HIGH),
    minutes=st.integers(min_value=-MINUTES, max_value=MINUTES),
)
@example(year=1, minutes=MINUTES)  # the reproduction: a BC timestamp in PostgreSQL
@example(year=9999, minutes=-MINUTES)  # past year 9999 in UTC
@example(year=LOW - 1, minutes=0)
@example(year=HIGH + 1, minutes=0)
def test_a_year_out_of_bounds_is_refused_with_any_offset(year, minutes):
    assert _reason(f"{year:04d}-01-01T00:00:00{_offset_text(minutes)}") == "year_out_of_range"


@given(
    hours=st.integers(min_value=0, max_value=99),
    minutes=st.integers(min_value=0, max_value=59),
    sign=st.sampled_from("+-"),
)
@example(hours=23, minutes=59, sign="+")
@example(hours=16, minutes=0, sign="+")
@example(hours=14, minutes=1, sign="-")
def test_offsets_beyond_fourteen_hours_are_refused(hours, minutes, sign):
    raw = f"2026-12-07T10:00:00{sign}{hours:02d}:{minutes:02d}"
    if timedelta(hours=hours, minutes=minutes) <= MAX_OFFSET:
        assert parse_instant(raw).utcoffset() == timedelta(0)
    else:
        assert _reason(raw) == "offset_out_of_range"


def test_offset_minutes_must_be_under_sixty():
    assert _reason("2026-12-07T10:00:00+08:60") == "malformed"


@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=9))
def test_fractions_are_truncated_to_microseconds(digits):
    parsed = parse_instant(f"2026-12-07T10:00:00.{digits}Z")
    assert parsed.microsecond == int(digits[:6].ljust(6, "0"))


@given(
    a=st.text(alphabet="0123456789", min_size=1, max_size=9),
    b=st.text("0123456789", min_size=1, max_size=9),
)
def test_truncation_never_inverts_the_order_of_two_times(a, b):
    left = parse_instant(f"2026-12-07T10:00:00.{a}+08:00")
    right = parse_instant(f"2026-12-07T10:00:00.{b}+08:00")
    if float(f"0.{a}") < float(f"0.{b}"):
        assert left <= right


@given(
    year=st.integers(min_value=LOW, max_value=HIGH - 1),
    month=st.integers(min_value=1, max_value=12),
    minutes=st.integers(min_value=-MINUTES, max_value=MINUTES),
)
@example(year=2016, month=12, minutes=0)  # the last real one, 2016-12-31T23:59:60Z
@example(year=2016, month=12, minutes=8 * 60)  # the same, written in Beijing
def test_a_leap_second_is_read_as_the_last_microsecond_of_its_minute(year, month, minutes):
    last_day = calendar.monthrange(year, month)[1]
    utc = datetime(year, month, last_day, 23, 59, 59, tzinfo=UTC)
    local = utc.astimezone(timezone(timedelta(minutes=minutes)))
    raw = local.strftime("%Y-%m-%dT%H:%M:60") + _offset_text(minutes)
    parsed = parse_instant(raw)
    assert parsed == utc.replace(microsecond=999_999)
    assert utc < parsed < utc + timedelta(seconds=1)
    assert parse_instant(raw.replace(":60", ":60.5", 1)) == parsed


@given(
    moment=st.datetimes(min_value=WALL_LOW, max_value=WALL_HIGH - timedelta(days=1)),
)
def test_second_sixty_anywhere_else_is_malformed(moment):
    utc = moment.replace(second=0, microsecond=0, tzinfo=UTC)
    last_day = calendar.monthrange(utc.year, utc.month)[1]
    if (utc.day, utc.hour, utc.minute) == (last_day, 23, 59):
        utc -= timedelta(minutes=1)
    assert _reason(utc.strftime("%Y-%m-%dT%H:%M:60Z")) == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "2026-12-07",
        "2026-12-07T10",
        "2026-02-30T10:00:00Z",
        "2026-12-07T24:00:00Z",
        "2026-12-07T10:61:00Z",
        "2026-W49-1T10:00:00Z",
        "2026-341T10:00:00Z",
        "20261207T100000Z",
        "２０２６-12-07T10:00:00Z",
        "2026-12-07T10:00:00+08:00\n",
        " 2026-12-07T10:00:00Z",
        "2026-12-07T10:00:00.Z",
        "2026-12-07T10:00:00.1234567890Z",
        "2026-12-07T10:00:00+08:00:00",
        "+2026-12-07T10:00:00Z",
        "2026-12-07T10:00:00Z" + "0" * 64,
    ],
)
def test_garbage_is_malformed(raw):
    assert _reason(raw) == "malformed"


@pytest.mark.parametrize("raw", [None, 0, 1.5, True, [], {}, b"2026-12-07T10:00:00Z"])
def test_a_non_string_is_malformed(raw):
    assert _reason(raw) == "malformed"


def test_no_offset_is_naive():
    assert _reason("2026-12-07T10:00:00") == "naive"
    assert _reason("2026-12-07T10:00") == "naive"


@given(
    raw=st.text(max_size=80) | st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.,+\-Zz]{0,30}\Z")
)
@hsettings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_is_a_bounded_utc_instant_or_a_time_input_error(raw):
    try:
        parsed = parse_instant(raw)
    except TimeInputError as exc:
        assert exc.reason in {"malformed", "naive", "year_out_of_range", "offset_out_of_range"}
        assert exc.message
        return
    assert parsed.utcoffset() == timedelta(0)
    assert datetime(LOW - 1, 12, 31, 10, tzinfo=UTC) <= parsed
    assert parsed < datetime(HIGH + 1, 1, 1, 14, tzinfo=UTC)


def test_the_bounds_follow_the_settings(settings):
    settings.TIME_INPUT_MIN_YEAR = 2020
    assert _reason("2019-12-31T23:00:00Z") == "year_out_of_range"
    settings.TIME_INPUT_MIN_YEAR = 2000
    assert parse_instant("2019-12-31T23:00:00Z").year == 2019


@pytest.mark.parametrize(
    "env",
    [
        {"TIME_INPUT_MIN_YEAR": "twenty"},
        {"TIME_INPUT_MAX_YEAR": "2100.5"},
        {"TIME_INPUT_MIN_YEAR": "2101"},
        {"TIME_INPUT_MIN_YEAR": "1"},
        {"TIME_INPUT_MAX_YEAR": "9999"},
    ],
)
def test_bad_bounds_stop_the_process(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ImproperlyConfigured):
            importlib.reload(product_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(product_settings)


# --- check_instant and the surfaces ----------------------------------------------


def test_check_instant_holds_built_times_to_the_same_bounds():
    ok = datetime(2026, 12, 7, 10, tzinfo=timezone(timedelta(hours=8)))
    assert check_instant(ok) is ok
    for bad, reason in (
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "year_out_of_range"),
        (datetime(2026, 12, 7, tzinfo=timezone(timedelta(hours=16))), "offset_out_of_range"),
        (
            datetime(2026, 12, 7, tzinfo=timezone(timedelta(hours=8, seconds=343))),
            "offset_out_of_range",
        ),
        (datetime(2026, 12, 7, tzinfo=UTC).replace(tzinfo=None), "naive"),
    ):
        with pytest.raises(TimeInputError) as caught:
            check_instant(bad)
        assert caught.value.reason == reason


class _Times(serializers.Serializer):
    at = BoundedDateTimeField()
    ends = BoundedDateTimeField(required=False, allow_null=True, zero_is_null=True)


def test_the_drf_field_answers_invalid_naming_the_field():
    bad = _Times(data={"at": "2026-12-07T10:00:00+16:00"})
    assert not bad.is_valid()
    assert bad.errors["at"][0].code == "invalid"
    good = _Times(data={"at": "2026-12-07T10:00:00Z", "ends": "0001-01-01T00:00:00Z"})
    assert good.is_valid(), good.errors
    assert good.validated_data["ends"] is None
    assert good.validated_data["at"] == datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_the_form_fields_refuse_out_of_range_years_in_the_local_zone():
    with pytest.raises(forms.ValidationError) as caught:
        BoundedFormDateTimeField().clean("0001-01-01T00:00")
    assert caught.value.code == "invalid"
    with pytest.raises(forms.ValidationError):
        BoundedFormDateTimeField().clean("2026-12-07T10:00:00+23:59")
    assert BoundedFormDateTimeField().clean("2026-12-07T10:00").year == 2026
    with pytest.raises(forms.ValidationError):
        BoundedSplitDateTimeField().clean(["0001-01-01", "00:00:00"])
    assert BoundedSplitDateTimeField().clean(["2026-12-07", "10:00:00"]).year == 2026


# --- PostgreSQL: what is accepted is what is stored ------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
@given(local=in_range, tz=offsets)
@example(local=WALL_LOW, tz=timezone(MAX_OFFSET))
@example(local=WALL_HIGH, tz=timezone(-MAX_OFFSET))
@hsettings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_accepted_time_round_trips_through_postgresql(local, tz):
    parsed = parse_instant(local.replace(tzinfo=tz).isoformat())
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [parsed])
        (stored,) = cursor.fetchone()
    assert stored == parsed


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_leap_second_round_trips_through_postgresql():
    parsed = parse_instant("2016-12-31T23:59:60Z")
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [parsed])
        assert cursor.fetchone()[0] == parsed
