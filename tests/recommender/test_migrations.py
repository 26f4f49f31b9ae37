"""Data migrations: what a rule already did before an upgrade, it still does after it."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("recommender", "0006_merchandising_rules")]
AFTER = [("recommender", "0007_merchandising_rule_surfaces")]


@pytest.mark.django_db(transaction=True)
def test_rules_made_before_surfaces_keep_serving_customer_and_session_lists_only():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("recommender", "MerchandisingRule")
    old.objects.create(name="Stock", action="filter", target_kind="out_of_stock")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # Everything back, as the suite needs.
    new = executor.loader.project_state(AFTER).apps.get_model("recommender", "MerchandisingRule")

    assert list(new.objects.values_list("name", "surfaces")) == [("Stock", ["customer", "session"])]
    created = new.objects.create(name="New", action="filter", target_kind="out_of_stock")
    created.refresh_from_db()
    assert created.surfaces == ["customer", "session", "similar", "bought_together", "trending"]


@pytest.mark.django_db(transaction=True)
def test_engine_builds_of_the_first_format_are_retired_and_their_files_removed(tmp_path):
    before = [("recommender", "0007_merchandising_rule_surfaces")]
    after = [("recommender", "0008_engine_builds_two_stage")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("recommender", "EngineBuild")
    artifact = tmp_path / "engine-1.npz"
    artifact.write_bytes(b"PK old format")
    old.objects.create(status="ready", path=str(artifact), config_version=1, model_name="m")
    old.objects.create(status="failed", path="", config_version=1, model_name="m", error="x")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    new = executor.loader.project_state(after).apps.get_model("recommender", "EngineBuild")

    rows = list(new.objects.order_by("pk").values_list("status", "error"))
    assert rows[0][0] == "retired"
    assert rows[0][1].startswith("Engine format 1 (before the two-stage engine): not served")
    assert rows[1] == ("failed", "x")
    assert not artifact.exists()


@pytest.mark.django_db(transaction=True)
def test_events_stored_before_the_aggregates_are_counted_by_the_migration():
    # given: events written before the aggregates existed
    before = [("recommender", "0007_merchandising_rule_surfaces")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    customer = old.get_model("recommender", "Customer").objects.create(external_id="c1")
    product = old.get_model("recommender", "Product").objects.create(external_id="P1", title="M")
    event = old.get_model("recommender", "Event")
    for n, (day, kind) in enumerate([(5, "view"), (6, "view"), (6, "purchase")]):
        event.objects.create(
            event_id=f"e{n}", customer=customer, product=product, event_type=kind,
            occurred_at=datetime(2024, 5, day, 12, tzinfo=UTC),
        )  # fmt: skip

    # when
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then
    from recommender.models import ActiveCustomersWeekly, CustomerActivity, EventDailyCount

    assert sorted(EventDailyCount.objects.values_list("day", "event_type", "events")) == [
        (date(2024, 5, 5), "view", 1),
        (date(2024, 5, 6), "purchase", 1),
        (date(2024, 5, 6), "view", 1),
    ]
    # Ordered: the migration inserts the weeks from a set, whose order follows the hash seed.
    assert list(
        ActiveCustomersWeekly.objects.order_by("week").values_list("week", "customers")
    ) == [
        (date(2024, 4, 29), 1),
        (date(2024, 5, 6), 1),
    ]
    assert list(CustomerActivity.objects.values_list("customer_id", "events")) == [(customer.pk, 3)]
