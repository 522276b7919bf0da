"""One parser for every time that enters the portal from outside: the API's
time fields (heartbeats ``at``, platform events ``occurred_at``, Alertmanager
``startsAt``/``endsAt``, appeals' claimed span), the site's forms and every
admin date-time field.

Why bounded: Python, PostgreSQL and ISO 8601 disagree at the edges.
``0001-01-01T00:00:00+14:00`` is a valid Python datetime that PostgreSQL
stores as a BC timestamp, which psycopg then cannot read back (every later
query touching the row failed with DataError); ``+16:00`` is a valid Python
offset that PostgreSQL refuses (InvalidTimeZoneDisplacementValue). So a time
is accepted only when

- it is ISO 8601 extended format, ``YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]``
  with a UTC offset ``Z``, ``±HH:MM``, ``±HHMM`` or ``±HH`` (ASCII digits
  only; week dates, ordinal dates and the basic format are refused);
- its year, as written, lies in ``TIME_INPUT_MIN_YEAR`` to
  ``TIME_INPUT_MAX_YEAR`` (settings, default 2000 to 2100);
- its offset lies within ±14:00 (the widest offset in use, Kiribati), with
  minutes under 60.

Fractions beyond microseconds are truncated, never rounded, so the order of
two inputs is never inverted. A leap second (second 60, allowed by RFC 3339)
is accepted only where one can occur, 23:59:60 UTC on the last day of a
month, and read as 23:59:59.999999 UTC: Python cannot represent it, and the
instant stays ordered between its neighbours.

Refusals are ``TimeInputError`` with the API's code ``invalid``, a
``reason`` (malformed, naive, year_out_of_range, offset_out_of_range) and a
message in the request's language that callers prefix with the field name.
The pure functions (``parse_instant``, ``check_instant``) need only settings
and translations; the DRF and form fields below wrap them so each surface
answers in its own way: a 400 naming the field, a rejected batch item, a
form error.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

from django import forms
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext as _
from rest_framework import serializers

MAX_OFFSET = timedelta(hours=14)
MAX_OFFSET_MINUTES = 14 * 60
# Longer than any time we accept (35 characters with nine fraction digits);
# the regular expression is linear anyway, this only bounds the work.
MAX_LENGTH = 64
BOUNDS_DESCRIPTION = "Year {min}-{max}, UTC offset within ±14:00; other values are refused."

_ISO = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?)?"
)


class TimeInputError(ValueError):
    """A refused time. ``code`` is the API error code; ``reason`` says which
    rule refused it."""

    code = "invalid"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


_bounds: tuple[int, int] | None = None


def year_bounds() -> tuple[int, int]:
    """(TIME_INPUT_MIN_YEAR, TIME_INPUT_MAX_YEAR), read once: a heartbeat
    batch parses a thousand times, and reading a setting costs more than the
    rest of a parse. Tests that override either setting reset it."""
    global _bounds  # noqa: PLW0603 - the cache above, reset by _settings_changed
    if _bounds is None:
        _bounds = (settings.TIME_INPUT_MIN_YEAR, settings.TIME_INPUT_MAX_YEAR)
    return _bounds


@receiver(setting_changed, dispatch_uid="timeinput_bounds")
def _settings_changed(*, setting: str, **kwargs) -> None:
    global _bounds  # noqa: PLW0603
    if setting in ("TIME_INPUT_MIN_YEAR", "TIME_INPUT_MAX_YEAR"):
        _bounds = None


def _malformed() -> TimeInputError:
    return TimeInputError(
        "malformed", _("Use an ISO 8601 time with a UTC offset, e.g. 2026-11-26T08:00:00+08:00.")
    )


def _year_refused() -> TimeInputError:
    low, high = year_bounds()
    return TimeInputError(
        "year_out_of_range",
        _("The year must lie between %(min)d and %(max)d.") % {"min": low, "max": high},
    )


def _offset_refused() -> TimeInputError:
    return TimeInputError("offset_out_of_range", _("The UTC offset must lie within ±14:00."))


def check_instant(value: datetime) -> datetime:
    """``value`` (aware) if its year and offset are in bounds, else
    TimeInputError. For times another parser already built (form fields in
    the local time zone)."""
    offset = value.utcoffset()
    if offset is None:
        raise TimeInputError("naive", _("Include a UTC offset, e.g. +08:00 or Z."))
    low, high = year_bounds()
    if not low <= value.year <= high:
        raise _year_refused()
    if abs(offset) > MAX_OFFSET or offset % timedelta(minutes=1):
        raise _offset_refused()
    return value


def parse_instant(raw: object) -> datetime:
    """The instant ``raw`` names, as an aware datetime in UTC; TimeInputError
    if it is not a bounded ISO 8601 time with an offset (module docstring)."""
    if not isinstance(raw, str) or len(raw) > MAX_LENGTH:
        raise _malformed()
    match = _ISO.fullmatch(raw)
    if match is None:
        raise _malformed()
    year, month, day, hour, minute, second, _fraction, zone, sign, oh, om = match.groups()
    if zone is None:
        raise TimeInputError("naive", _("Include a UTC offset, e.g. +08:00 or Z."))
    low, high = year_bounds()
    if not low <= int(year) <= high:
        raise _year_refused()
    if sign:
        if om is not None and int(om) >= 60:
            raise _malformed()
        if int(oh) * 60 + int(om or 0) > MAX_OFFSET_MINUTES:
            raise _offset_refused()
    if second == "60":
        return _leap_second(raw, match)
    # The expression above has fixed the shape; fromisoformat (C, a tenth of
    # the cost of building the datetime here: heartbeats parse a thousand per
    # batch) reads exactly these shapes, truncating fractions, but for a
    # lowercase "z".
    try:
        value = datetime.fromisoformat(raw[:-1] + "Z" if zone == "z" else raw)
    except ValueError as exc:  # 2026-02-30, 25:00, second 61
        raise _malformed() from exc
    return value.astimezone(UTC)


def _leap_second(raw: str, match: re.Match) -> datetime:
    """23:59:60 UTC on the last day of a month, read as 23:59:59.999999."""
    year, month, day, hour, minute, _second, _fraction, _zone, sign, oh, om = match.groups()
    offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            59,
            999_999,
            tzinfo=timezone(-offset if sign == "-" else offset),
        ).astimezone(UTC)
    except ValueError as exc:
        raise _malformed() from exc
    last_day = calendar.monthrange(value.year, value.month)[1]
    if (value.day, value.hour, value.minute) != (last_day, 23, 59):
        raise _malformed()
    return value


# --- The surfaces ------------------------------------------------------------------


class BoundedDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, parsed by ``parse_instant``: a refusal is the
    field's ``invalid`` error (400 ``invalid`` naming the field). With
    ``zero_is_null`` a time in year 1 means "none": Go's zero time, which
    Alertmanager sends as the ``endsAt`` of a firing alert."""

    def __init__(self, *args, zero_is_null: bool = False, **kwargs):
        self.zero_is_null = zero_is_null
        low, high = year_bounds()
        bounds = BOUNDS_DESCRIPTION.format(min=low, max=high)
        help_text = kwargs.pop("help_text", None)
        kwargs["help_text"] = f"{help_text} ({bounds})" if help_text else bounds
        super().__init__(*args, **kwargs)

    def to_internal_value(self, value):
        if self.zero_is_null and isinstance(value, str) and value.startswith("0001-"):
            return None
        try:
            check = check_instant if isinstance(value, datetime) else parse_instant
            parsed = check(value)
        except TimeInputError as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from exc
        return self.enforce_timezone(parsed)


def _form_checked(result: datetime | None) -> datetime | None:
    """A form field's datetime held to the bounds, refused as a form error."""
    if result is None:
        return None
    try:
        return check_instant(result)
    except TimeInputError as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from exc


class BoundedFormDateTimeField(forms.DateTimeField):
    """A form's date-time field (entered in the local time zone, or with an
    offset), held to the same bounds."""

    def to_python(self, value):
        return _form_checked(super().to_python(value))


class BoundedSplitDateTimeField(forms.SplitDateTimeField):
    """The admin's date + time field, held to the same bounds."""

    def compress(self, data_list):
        return _form_checked(super().compress(data_list))


def install_admin_time_bounds() -> None:
    """Every admin date-time field (ours and the libraries', such as
    django-celery-beat's) is a BoundedSplitDateTimeField.

    Django offers only per-ModelAdmin ``formfield_overrides``; they are
    merged over the admin's module defaults when each ModelAdmin is built.
    So the default itself is set, once, before admin autodiscovery
    (kamen_portal.apps runs ahead of django.contrib.admin, and no app
    registers admins before it). compensation/tests/test_time_input.py walks
    the registry and fails on an unbounded field."""
    from django.contrib.admin import options  # the admin app is loaded by now
    from django.db import models

    defaults = options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DateTimeField]
    defaults["form_class"] = BoundedSplitDateTimeField
