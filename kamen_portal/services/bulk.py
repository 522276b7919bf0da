"""Bulk inserts by COPY on PostgreSQL.

Django 5.2 inserts a ``bulk_create`` batch as ``INSERT ... SELECT * FROM
UNNEST(%s::text[], ...)``; with psycopg's client-side binding (our setting)
every array of text or JSON is quoted element by element in Python
(``ListDumper``), which issue 23's profile showed among the largest costs of
a payout chunk. Here the rows go by COPY instead, into a session-temporary
stage, and one INSERT ... SELECT moves them over (ON CONFLICT DO NOTHING
where asked). Primary keys are taken from the table's sequence first, in
the order given, so the caller gets them back as ``bulk_create`` sets them
and knows which rows a conflict skipped. Other databases (SQLite in
embedded mode) use ``bulk_create``.
"""

from __future__ import annotations

from django.db import connection, models, transaction


def copy_insert(objs: list[models.Model], *, ignore_conflicts: bool = False) -> list[models.Model]:
    """Insert ``objs`` (unsaved instances of one model with an integer
    primary key from a sequence) in the caller's transaction; return those
    inserted, in order, their primary keys set in the order given. With
    ``ignore_conflicts`` a row violating a unique constraint is skipped and
    not returned (elsewhere than PostgreSQL, as ``bulk_create``: all are
    returned and their keys are not set)."""
    if not objs:
        return []
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts, batch_size=2000)
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
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:  # noqa: S608
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
