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
