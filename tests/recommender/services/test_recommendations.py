"""Request-time recommendations on a fitted engine, with the weight-free hashing embedder.

The catalogue has three kinds of product (printer ink, coffee things, t-light holders); the
customers' baskets make each kind co-occur. The real model runs in
tests/integration/test_real_model_recommendations.py.
"""

from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.choices import BuildStatus
from recommender.ingestion.records import ProductRecord
from recommender.ml.engine import ConfigError, EngineConfig, History
from recommender.ml.sorted_search import IdRows
from recommender.models import (
    Customer,
    EngineBuild,
    Event,
    Product,
    RecommendationConfig,
    RecommendationLog,
)
from recommender.services import recommendations as service
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.ingestion import products_upsert
from tests.recommender.shop import T0, add_event

pytestmark = pytest.mark.django_db


def ids(recommendations):
    return [item.product.external_id for item in recommendations.items]


def test_engine_build_publishes_a_ready_artifact_with_counts(shop):
    build = EngineBuild.objects.get()
    assert build.status == BuildStatus.READY
    assert (build.item_count, build.customer_count, build.event_count) == (8, 8, 17)
    assert build.config_version == 1
    assert build.events_until == T0 + timedelta(days=22)
    assert build.path.endswith(".engine")


def test_purchased_items_are_excluded_and_the_co_bought_ink_comes_first(shop):
    customer = Customer.objects.get(external_id="C1")

    result = service.customer_recommendations(customer=customer, k=4)

    assert ids(result)[0] == "INK-3"
    assert not {"INK-1", "INK-2"} & set(ids(result))
    assert result.items[0].reason == "because you bought Canon black printer ink cartridge"
    assert all(item.reasons and item.reason for item in result.items)


def test_a_new_event_changes_the_next_list_without_refitting(shop):
    customer = Customer.objects.get(external_id="C1")
    before = ids(service.customer_recommendations(customer=customer, k=3))

    add_event(customer, "MUG-1", event_type="add_to_cart", at=T0 + timedelta(days=23))
    after = service.customer_recommendations(customer=customer, k=3)

    assert EngineBuild.objects.count() == 1
    assert (before[0], set(before[1:])) == ("INK-3", {"LAMP-1", "LAMP-2"})
    assert ids(after)[:2] == ["INK-3", "COF-1"]
    assert ids(after)[2] in {"MUG-1", "MUG-2"}  # A carted item is not excluded (only purchases).
    assert after.items[1].reason == "because you added to your cart White ceramic coffee mug"


def test_a_cold_customer_gets_trending_products(shop):
    customer = Customer.objects.create(external_id="NEW")

    result = service.customer_recommendations(customer=customer, k=3)

    assert ids(result) == ["LAMP-1", "LAMP-2", "INK-2"]
    assert [item.reasons for item in result.items] == [
        ("popular in Home", "trending in Home this week"),
        ("popular in Home", "trending in Home this week"),
        ("popular in Office",),
    ]
    assert {s for item in result.items for s in item.sources} == {"trending", "popularity"}
    assert ids(result) == ids(service.trending_products(k=3))


def test_a_new_product_is_recommended_as_soon_as_it_is_embedded(shop):
    # given: a new ink product, embedded after the last fit and the last index build
    products_upsert(
        records=[ProductRecord("INK-9", "Brother printer ink cartridge", category="Office")]
    )
    product_embeddings_refresh()
    customer = Customer.objects.get(external_id="C3")

    result = service.customer_recommendations(customer=customer, k=3)

    assert "INK-9" in ids(result)
    new = next(item for item in result.items if item.product.external_id == "INK-9")
    assert new.sources == ("semantic",)
    assert new.reason.startswith("similar to what you bought: ")


def test_inactive_products_are_never_returned(shop):
    Product.objects.filter(external_id__in=["INK-3", "LAMP-1"]).update(is_active=False)
    customer = Customer.objects.get(external_id="C1")

    personal = ids(service.customer_recommendations(customer=customer, k=10))
    trending = ids(service.trending_products(k=10))

    assert "INK-3" not in personal
    assert "LAMP-1" not in trending
    assert sorted(personal) == ["COF-1", "LAMP-2", "MUG-1", "MUG-2"]


def test_every_list_is_logged_with_its_recommendation_id(shop):
    customer = Customer.objects.get(external_id="C1")

    result = service.customer_recommendations(customer=customer, k=2)

    assert result.recommendation_id is not None

    log = RecommendationLog.objects.get(recommendation_id=result.recommendation_id)
    assert (log.kind, log.customer, log.config_version) == ("customer", customer, 1)
    assert log.engine_build == EngineBuild.objects.get().pk
    assert log.product_ids == ids(result)


def test_a_list_asked_for_without_logging_is_the_same_list_and_writes_no_row(shop):
    customer = Customer.objects.get(external_id="C1")
    mug = Product.objects.get(external_id="MUG-1")

    quiet = service.customer_recommendations(customer=customer, k=3, log=False)
    similar = service.similar_products(product=mug, k=3, mode="behavioural", log=False)

    assert (quiet.recommendation_id, similar.recommendation_id) == (None, None)
    assert RecommendationLog.objects.count() == 0
    assert ids(quiet) == ids(service.customer_recommendations(customer=customer, k=3))
    assert quiet.engine_build == EngineBuild.objects.get().pk
    assert RecommendationLog.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_list_served_outside_a_transaction_is_logged_in_one_statement(shop):
    # Outside a transaction (a web request) PostgreSQL takes the one-round-trip insert.
    customer = Customer.objects.get(external_id="C1")

    with CaptureQueriesContext(connection) as queries:
        result = service.customer_recommendations(customer=customer, k=2)

    writes = [q["sql"] for q in queries.captured_queries if "recommendationlog" in q["sql"]]
    assert result.recommendation_id is not None
    log = RecommendationLog.objects.get(recommendation_id=result.recommendation_id)
    assert len(writes) == 1
    assert (log.kind, log.customer, log.config_version) == ("customer", customer, 1)
    assert log.engine_build == EngineBuild.objects.get().pk
    assert log.product_ids == ids(result)
    assert log.created_at is not None
    assert connection.get_autocommit()
    assert not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_product_gone_since_the_fit_leaves_the_log_naming_the_list_served(shop):
    # given: the customer's first product deactivated after the fit
    customer = Customer.objects.get(external_id="C1")
    before = ids(service.customer_recommendations(customer=customer, k=2, log=False))
    Product.objects.filter(external_id=before[0]).update(is_active=False)

    # when: the list is served (the engine ranks it first, the check drops it, it ranks again)
    result = service.customer_recommendations(customer=customer, k=2)

    # then: two active products, and the log names exactly those
    assert result.recommendation_id is not None
    assert before[0] not in ids(result)
    assert len(ids(result)) == 2
    log = RecommendationLog.objects.get(recommendation_id=result.recommendation_id)
    assert log.product_ids == ids(result)
    assert RecommendationLog.objects.count() == 1


def test_the_served_list_is_the_engine_ranking_the_evaluation_measures(shop):
    customer = Customer.objects.get(external_id="C3")
    serving = service.serving_engine()
    events = Event.objects.filter(customer=customer).order_by("-occurred_at")
    history = History(
        product_ids=[cast(int, e.product_id) for e in events],
        event_types=[e.event_type for e in events],
        timestamps=[e.occurred_at.timestamp() for e in events],
    )
    now = max([serving.fitted_at, *history.timestamps])

    result = service.customer_recommendations(customer=customer, k=4)

    rows = serving.engine.rank(history, k=4, now=now)
    expected = Product.objects.in_bulk([int(serving.engine.item_ids[r]) for r in rows])
    assert ids(result) == [expected[int(serving.engine.item_ids[r])].external_id for r in rows]


def test_the_serving_engine_comes_prepared(shop):
    # Built where the engine is loaded (a gunicorn master, before it forks), not per request.
    engine = service.serving_engine().engine
    held = engine._derived["id_rows"]
    assert isinstance(held, IdRows)
    assert held.ids is engine.item_ids


def test_session_recommendations_use_the_products_in_the_request(shop):
    ink = Product.objects.get(external_id="INK-1")

    result = service.session_recommendations(events=[service.SessionEvent(product=ink)], k=2)

    assert ids(result)[0] in {"INK-2", "INK-3"}
    assert "INK-1" not in ids(result)
    assert RecommendationLog.objects.get().kind == "session"


@pytest.mark.parametrize("mode", ["behavioural", "hybrid"])
def test_similar_and_bought_together(shop, mode):
    mug = Product.objects.get(external_id="MUG-1")

    similar = ids(service.similar_products(product=mug, k=2, mode=mode))
    together = ids(service.bought_together(product=mug, k=2))

    assert "MUG-1" not in similar
    assert sorted(together) == ["COF-1", "MUG-2"]


def test_no_engine_yet_is_a_clear_error(fresh_serving):
    customer = Customer.objects.create(external_id="C1")

    with pytest.raises(service.EngineNotReady, match="manage.py train"):
        service.customer_recommendations(customer=customer, k=3)


def test_config_versions_are_append_only_with_one_active(admin_user):
    first = service.recommendation_config_active()
    second = service.recommendation_config_save(
        config=EngineConfig().replace(mmr_lambda=0.7), created_by=admin_user, note="more variety"
    )
    restored = service.recommendation_config_restore(version=1)

    assert (first.version, second.version, restored.version) == (1, 2, 3)
    assert list(RecommendationConfig.objects.filter(is_active=True)) == [restored]
    assert restored.config == first.config
    assert restored.note == "restored from version 1"
    assert RecommendationConfig.objects.get(version=2).config["mmr_lambda"] == 0.7


def test_a_bad_config_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="mmr_lambda"):
        service.recommendation_config_save(config={"mmr_lambda": 3})
    with pytest.raises(ValueError, match="version: no recommendation configuration has version 9"):
        service.recommendation_config_restore(version=9)
    assert RecommendationConfig.objects.count() == 0


def test_a_fit_uses_the_active_config_version(shop):
    service.recommendation_config_save(config={"mmr_lambda": 0.5}, note="x")

    build = service.engine_build()
    customer = Customer.objects.get(external_id="C1")
    result = service.customer_recommendations(customer=customer, k=2)

    assert build.config_version == 2
    assert (result.config_version, result.engine_build) == (2, build.pk)


def test_old_engine_builds_are_pruned_and_their_files_removed(shop, settings):
    settings.RECSITE_INDEX_KEEP = 1
    first_path = shop.path

    newest = service.engine_build()

    shop.refresh_from_db()
    assert (shop.status, newest.status) == (BuildStatus.RETIRED, BuildStatus.READY)
    assert not Path(first_path).exists()
    assert Path(newest.path).exists()
