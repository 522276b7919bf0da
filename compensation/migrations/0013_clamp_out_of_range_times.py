"""Make times stored before input was bounded (kamen_portal/timeinput.py)
readable again.

Before the parser, ``"occurred_at": "0001-01-01T00:00:00+14:00"`` was stored
by PostgreSQL as a BC timestamp, which psycopg cannot load: every query that
read the row (a replay, the member's next tier event, the admin list) failed
with DataError. The same could reach an incident or a card-key batch through
the admin's date fields.

The choice: **clamp**, not mark. A time the parser would refuse today
(outside the default years 2000..2100 as written, with any offset
up to ±14:00) is set to the nearest bound: MIN-01-01T00:00:00Z or
MAX-12-31T23:59:59Z. That keeps each row where the rules compare it (a year-1
event stays older than every real event, so it still never wins the tier;
a year-9999 one stays newer) and keeps it in the audit trail, while a mark
(a flag column) would still leave the value unreadable. The rows changed are
logged by primary key (warning, logger ``compensation.migrations``); their
original values cannot be restored, so the reverse is a no-op. Rows inside
the bounds are never touched. The UPDATEs filter in SQL without loading the
bad values, so they work on the very rows psycopg cannot read.
"""

import logging
from datetime import UTC, datetime, timedelta

from django.db import migrations
from django.db.models import Q

logger = logging.getLogger("compensation.migrations")
SECOND = timedelta(seconds=1)


def bounds() -> tuple[datetime, datetime, datetime, datetime]:
    """(outer low, inner low, inner high, outer high): the parser accepts
    every instant between the outer bounds; a clamped time is set to an
    inner one."""
    # The parser's default bounds when this was written, frozen: a migration
    # changes the same rows wherever and whenever it runs, whatever
    # TIME_INPUT_MIN_YEAR / MAX_YEAR say then.
    low, high = 2000, 2100
    inner_low = datetime(low, 1, 1, tzinfo=UTC)
    inner_high = datetime(high, 12, 31, 23, 59, 59, tzinfo=UTC)
    return (
        inner_low - timedelta(hours=14),
        inner_low,
        inner_high,
        inner_high + timedelta(hours=14),
    )


def _clamp(queryset, field: str, value: datetime, label: str) -> int:
    pks = list(queryset.values_list("pk", flat=True))
    if pks:
        logger.warning("%s.%s clamped to %s for pk %s", label, field, value.isoformat(), pks)
        queryset.model.objects.filter(pk__in=pks).update(**{field: value})
    return len(pks)


def clamp_times(apps, schema_editor=None) -> int:
    """Clamp every stored out-of-range time; returns how many were changed."""
    outer_low, low, high, outer_high = bounds()
    changed = 0
    event = apps.get_model("compensation", "MembershipEvent")
    batch = apps.get_model("compensation", "CardKeyBatch")
    for model, field in ((event, "occurred_at"), (batch, "valid_until")):
        objects = model.objects
        changed += _clamp(objects.filter(**{f"{field}__lt": outer_low}), field, low, model.__name__)
        changed += _clamp(
            objects.filter(**{f"{field}__gt": outer_high}), field, high, model.__name__
        )
    # Incidents keep ended_at > started_at (a check constraint) after each
    # statement: move the end first on the way up, the start first down.
    incident = apps.get_model("compensation", "Incident")
    objects = incident.objects
    changed += _clamp(
        objects.filter(Q(ended_at__lt=outer_low) | Q(started_at__lt=outer_low, ended_at__lte=low)),
        "ended_at",
        low + SECOND,
        "Incident",
    )
    changed += _clamp(objects.filter(started_at__lt=outer_low), "started_at", low, "Incident")
    changed += _clamp(
        objects.filter(started_at__gt=outer_high), "started_at", high - SECOND, "Incident"
    )
    changed += _clamp(objects.filter(ended_at__gt=outer_high), "ended_at", high, "Incident")
    return changed


class Migration(migrations.Migration):
    dependencies = [("compensation", "0012_field_labels")]

    operations = [migrations.RunPython(clamp_times, migrations.RunPython.noop, elidable=True)]
