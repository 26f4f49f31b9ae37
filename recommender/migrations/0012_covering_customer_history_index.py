"""The customer history index covers the columns the per-request read selects.

``customer_recent_events`` selects product, type, time and search query of a customer's newest
events; with those columns in the index PostgreSQL answers it by an index-only scan (a few
adjacent leaf pages) instead of visiting one heap page per event. On PostgreSQL the new index is
built ``CONCURRENTLY`` (writes go on during the build of a large table) before the old one is
dropped, so the history read always has an index; the migration is therefore not atomic. Other
databases get the plain schema operations (SQLite ignores ``include``).
"""

from django.db import migrations, models

NEW = models.Index(
    fields=["customer", "-occurred_at"],
    include=["product", "event_type", "search_query"],
    name="event_customer_history",
)
OLD = models.Index(fields=["customer", "-occurred_at"], name="event_customer_recent")


def _swap(apps, schema_editor, add, remove):
    event = apps.get_model("recommender", "Event")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(event, add, concurrently=True)
        schema_editor.remove_index(event, remove, concurrently=True)
    else:
        schema_editor.add_index(event, add)
        schema_editor.remove_index(event, remove)


def forwards(apps, schema_editor):
    _swap(apps, schema_editor, NEW, OLD)


def backwards(apps, schema_editor):
    _swap(apps, schema_editor, OLD, NEW)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("recommender", "0011_product_event_counts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="event", name="event_customer_recent"),
                migrations.AddIndex(model_name="event", index=NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
