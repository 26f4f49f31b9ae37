"""The audit log is append-only in the database too (PostgreSQL; SQLite in 0004): a
trigger refuses every UPDATE and DELETE of an entry, except the one Django makes when a login is
deleted (``user`` set to null, nothing else changed). TRUNCATE, a superuser's tool, is not a row
operation."""

from django.db import migrations

_CREATE = """
CREATE OR REPLACE FUNCTION privacy_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.user_id IS NULL
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor = OLD.actor
       AND NEW.action = OLD.action AND NEW.target = OLD.target
       AND NEW.detail::text = OLD.detail::text THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER privacy_audit_append_only BEFORE UPDATE OR DELETE ON privacy_auditentry
    FOR EACH ROW EXECUTE FUNCTION privacy_audit_append_only();
"""
_DROP = """
DROP TRIGGER IF EXISTS privacy_audit_append_only ON privacy_auditentry;
DROP FUNCTION IF EXISTS privacy_audit_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
