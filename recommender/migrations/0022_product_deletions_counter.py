# Issue 13: a counter of product deletions (PostgreSQL), so that an insert of events can tell in
# one query that no product it names was deleted since its product map was read, instead of
# probing every product of every chunk (a quarter of an import's writing thread at 1M products).

from django.db import migrations

_SEQUENCE = "recsite_product_deletions"
_FUNCTION = "recsite_product_deletions_count"
_TRIGGER = "recommender_product_deletions_count"


def counter_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # Elsewhere the insert checks its products every time.
    schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_SEQUENCE}")
    # Per statement, whatever deletes (the service, the ORM, the admin, SQL): the counter moves
    # before the deletion commits. A deletion rolled back moves it too, which only costs the
    # next insert the check it would have made anyway.
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM nextval('{_SEQUENCE}'); RETURN NULL; END $$"
    )
    schema_editor.execute(
        f"CREATE TRIGGER {_TRIGGER} AFTER DELETE OR TRUNCATE ON recommender_product "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
    )


def counter_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER} ON recommender_product")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
    schema_editor.execute(f"DROP SEQUENCE IF EXISTS {_SEQUENCE}")


class Migration(migrations.Migration):

    dependencies = [
        ("recommender", "0021_sequential_builds"),
    ]

    operations = [
        migrations.RunPython(counter_create, counter_drop),
    ]
