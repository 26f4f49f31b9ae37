"""Entries of the audit log cannot be changed in SQLite either (the embedded default), as 0002
makes sure in PostgreSQL: a trigger refuses every UPDATE of an entry, except the one Django makes
when a login is deleted (``user`` set to null, nothing else changed).

DELETE is not refused in SQLite: Django empties tables with DELETE there (``manage.py flush`` and
every test that needs an empty database), where PostgreSQL uses TRUNCATE, which row triggers do not
see. The model's own guard still refuses deletes through the ORM on both.

SQLite has no ALTER TABLE for most changes: Django rebuilds a table it alters (a new table, the
rows copied, the old one dropped), and triggers go with the old table. A later migration that
alters ``privacy_auditentry`` must create these triggers again."""

from django.db import migrations

_CREATE = (
    """
CREATE TRIGGER privacy_audit_no_update BEFORE UPDATE ON privacy_auditentry
WHEN NOT (NEW.user_id IS NULL AND NEW.id IS OLD.id AND NEW.at IS OLD.at
          AND NEW.actor IS OLD.actor AND NEW.action IS OLD.action
          AND NEW.target IS OLD.target AND NEW.detail IS OLD.detail)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (UPDATE refused)'); END
""",
)
_DROP = ("DROP TRIGGER IF EXISTS privacy_audit_no_update",)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in _CREATE:
            schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in _DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("privacy", "0003_aggregate_release")]

    operations = [migrations.RunPython(create, drop)]
