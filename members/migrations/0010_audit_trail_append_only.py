"""The staff audit trail is append-only below the ORM too (PostgreSQL): no
DELETE, and no UPDATE except the one Django itself makes when a staff
account is deleted (actor set to NULL; actor_email keeps who it was)."""

from django.db import migrations


def forbid_rewrites(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        CREATE OR REPLACE FUNCTION kamen_audit_append_only() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE'
               AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
               AND NEW.action = OLD.action
               AND NEW.timestamp = OLD.timestamp
               AND NEW.object_pk = OLD.object_pk
               AND NEW.content_type_id = OLD.content_type_id
               AND NEW.changes IS NOT DISTINCT FROM OLD.changes
               AND NEW.changes_text IS NOT DISTINCT FROM OLD.changes_text
               AND NEW.remote_addr IS NOT DISTINCT FROM OLD.remote_addr
               AND NEW.actor_email IS NOT DISTINCT FROM OLD.actor_email THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'audit trail % is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """,
        params=None,  # literal % placeholders of RAISE, not query params
    )
    schema_editor.execute(
        "CREATE TRIGGER auditlog_logentry_append_only BEFORE UPDATE OR DELETE "
        "ON auditlog_logentry FOR EACH ROW EXECUTE FUNCTION kamen_audit_append_only();"
    )


def allow_rewrites(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS auditlog_logentry_append_only ON auditlog_logentry;"
    )
    schema_editor.execute("DROP FUNCTION IF EXISTS kamen_audit_append_only();")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0009_retry_permission_adjusted_kind"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(forbid_rewrites, allow_rewrites)]
