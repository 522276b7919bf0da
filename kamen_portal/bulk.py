"""Bulk inserts that stay fast at thousands of rows a batch (issue 23):
``copy_insert``, the one way services insert big batches on PostgreSQL.

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

from django.db import connection, connections, models, transaction
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


def copy_insert(objs: list[models.Model], *, ignore_conflicts: bool = False) -> list[models.Model]:
    """Insert ``objs`` (unsaved instances of one model with an integer primary
    key from a sequence) in the caller's transaction; return those inserted,
    in order, their primary keys set in the order given. With
    ``ignore_conflicts`` a row violating a unique constraint is skipped and
    not returned (elsewhere than PostgreSQL, as ``bulk_create``: all are
    returned and their keys are not set)."""
    if not objs:
        return []
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts, batch_size=2000)
    if ignore_conflicts:
        return _staged_insert(objs, ignore_conflicts=True)
    return _direct_insert(model, objs)


def _direct_insert(model: type[models.Model], objs: list[models.Model]) -> list[models.Model]:
    """COPY straight into the table (no conflict handling): the fast path."""
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
            for obj, (value,) in zip(objs, sorted(cursor.fetchall()), strict=True):
                setattr(obj, pk.attname, value)
        # The connection itself, not the thread-local proxy, per value.
        conn = connections[connection.alias]
        prepared = [(f.attname, _prepare(f, conn)) for f in fields]
        columns = ", ".join(quote(f.column) for f in fields)
        # Django wraps only its own cursor calls: a COPY error is raised as
        # Django's IntegrityError / DataError like any other write.
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy,
        ):
            for obj in objs:
                copy.write_row(
                    [getattr(obj, name) if prep is None else prep(obj) for name, prep in prepared]
                )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def _staged_insert(objs: list[models.Model], *, ignore_conflicts: bool) -> list[models.Model]:
    """COPY into a session-temporary stage, then one INSERT ... SELECT (ON
    CONFLICT DO NOTHING where asked): the rows a conflict skipped are known."""
    model = type(objs[0])
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table, stage = quote(opts.db_table), quote(f"copy_stage_{opts.db_table}")
    pk = quote(opts.pk.column)
    columns = ", ".join([pk, *(quote(f.column) for f in fields)])
    # One transaction (the caller's if any): the stage's rows live until commit.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [opts.db_table, opts.pk.column, len(objs)],
        )
        pks = sorted(row[0] for row in cursor.fetchall())
        # The stage lives as long as the connection.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(
                f"COPY {stage} ({columns}) FROM STDIN"  # noqa: S608
            ) as copy,
        ):
            for key, obj in zip(pks, objs, strict=True):
                # Defaults and auto_now values, as bulk_create fills them in.
                copy.write_row(
                    [
                        key,
                        *(
                            f.get_db_prep_save(f.pre_save(obj, add=True), connection)
                            for f in fields
                        ),
                    ]
                )
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "  # noqa: S608
            f"ORDER BY {pk}{conflict} RETURNING {pk}"
        )
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute(f"TRUNCATE {stage}")
    done = []
    for key, obj in zip(pks, objs, strict=True):
        if key in inserted:
            obj.pk = key
            obj._state.adding = False
            obj._state.db = connection.alias
            done.append(obj)
    return done
