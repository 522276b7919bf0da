"""Bulk inserts that stay fast at thousands of rows a batch (issue 23).

Django's ``bulk_create`` on PostgreSQL binds each column as an array on the
client (``INSERT ... SELECT * FROM UNNEST(%s, ...)``), and psycopg's client
side quoting dumps and escapes every array element in Python: about 4 µs a
value, most of a ledger append. ``COPY ... FROM STDIN`` sends rows through
psycopg's C dumpers instead. Primary keys are taken from the table's
sequence first (one query), so callers get their ``pk`` as with
``bulk_create`` and ids stay in the order of ``objs``: inside the caller's
transaction and under whatever lock orders its writers, as before.

Other databases (SQLite in development and unit tests) use ``bulk_create``.
Only services call this; it writes what they give it, nothing more (no
signals, no ``save()``: the same contract as ``bulk_create``).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, connections, models
from django.db.models.fields import AutoFieldMixin

# Field types whose Python values psycopg adapts as Django would prepare them
# (aware datetimes, UUIDs, ints, strings, booleans): passed through as they are.
_PLAIN = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.SmallIntegerField,
    models.PositiveSmallIntegerField,
    models.CharField,
    models.TextField,
    models.UUIDField,
    models.BooleanField,
    models.ForeignKey,
)


def pg_text_array(values: Sequence[str]) -> str:
    """A PostgreSQL ``text[]`` literal of ``values`` (bind it as one string and
    cast it, ``= ANY(%s::text[])``): one parameter instead of one per value."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _prepare(field: models.Field, conn):
    if isinstance(field, _PLAIN) and not getattr(field, "auto_now", False):
        return None
    if isinstance(field, models.DateTimeField) and not (field.auto_now or field.auto_now_add):
        return None
    return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), conn)


def bulk_insert(model: type[models.Model], objs: list[models.Model]) -> list[models.Model]:
    """Insert unsaved ``objs`` of ``model`` (concrete fields as set on them),
    setting their primary keys; like ``bulk_create`` without conflict options."""
    if not objs:
        return objs
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objs)
    meta = model._meta
    pk = meta.pk
    table = meta.db_table
    fields = [f for f in meta.concrete_fields]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if isinstance(pk, AutoFieldMixin):
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [quote(table), pk.column, len(objs)],
            )
            for obj, (value,) in zip(objs, cursor.fetchall(), strict=True):
                setattr(obj, pk.attname, value)
        # The connection itself, not the thread-local proxy, per value.
        conn = connections[connection.alias]
        prepared = [(f.attname, _prepare(f, conn)) for f in fields]
        columns = ", ".join(quote(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row(
                    [getattr(obj, name) if prep is None else prep(obj) for name, prep in prepared]
                )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs
