from django.db import migrations
from django.utils import timezone

APPEND_ONLY_TABLES = [
    "compensation_ledgerentry",
    "compensation_coveredspan",
    "compensation_ledgercheckpoint",
]


def genesis(apps, schema_editor):
    LedgerHead = apps.get_model("compensation", "LedgerHead")
    Policy = apps.get_model("compensation", "Policy")
    LedgerHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": "0" * 64})
    if not Policy.objects.exists():
        # DESIGN section 5 defaults.
        Policy.objects.create(version=1, published_at=timezone.now(), change_note="Initial policy")


def forbid_rewrites(apps, schema_editor):
    # Below the ORM too: even raw SQL cannot edit or delete ledger rows on
    # PostgreSQL. Corrections are reversal entries. (TRUNCATE is left to
    # privileges: production's application role should not hold it, and the
    # test runner needs it to reset transactional tests.)
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        CREATE OR REPLACE FUNCTION kamen_ledger_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """,
        params=None,  # the body holds literal % placeholders of RAISE, not query params
    )
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION kamen_ledger_append_only();"
        )


def allow_rewrites(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS kamen_ledger_append_only();")


class Migration(migrations.Migration):
    dependencies = [("compensation", "0001_initial")]

    operations = [
        migrations.RunPython(genesis, migrations.RunPython.noop),
        migrations.RunPython(forbid_rewrites, allow_rewrites),
    ]
