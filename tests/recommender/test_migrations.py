"""Data migrations: what a rule already did before an upgrade, it still does after it."""

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
