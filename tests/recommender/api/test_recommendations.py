"""The recommendation endpoints over HTTP, on the shop of the service tests (hashing embedder)."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import Job
from recommender.api.recommendations import CustomerRecommendationOutputSerializer
from recommender.api.serializers import product_payload
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, Product, RecommendationLog
from recommender.selectors.catalog import products_active
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.index import vector_index_build
from recommender.services.ingestion import products_upsert
from recommender.services.recommendations import (
    customer_recommendations,
    engine_build,
    recommendation_config_save,
    serving_engine_recheck,
)
from recsite.api.catalog import ProductOutputSerializer
from tests.recommender.shop import SHOP_CONFIG, T0, add_event

pytestmark = pytest.mark.django_db


def result_ids(response):
    return [r["product"]["product_id"] for r in response.json()["results"]]


def test_customer_recommendations_carry_ids_sources_components_and_reasons(shop, read_client):
    response = read_client.get("/api/v1/customers/C1/recommendations", {"k": 1})

    body = response.json()
    assert response.status_code == 200
    assert body["customer_id"] == "C1"
    assert (body["kind"], body["config_version"], body["engine_build"]) == ("customer", 1, shop.pk)
    assert result_ids(response) == ["INK-3"]
    first = body["results"][0]
    assert first["sources"] == ["collaborative", "semantic", "popularity"]
    assert set(first["components"]) == {"collaborative", "semantic", "popularity"}
    assert first["score"] == pytest.approx(sum(first["components"].values()), abs=1e-5)
    assert first["reason"] == "because you bought Canon black printer ink cartridge"
    assert first["reasons"][0] == first["reason"]
    log = RecommendationLog.objects.get(recommendation_id=uuid.UUID(body["recommendation_id"]))
    assert log.customer is not None
    assert (log.customer.external_id, log.product_ids) == ("C1", ["INK-3"])


def test_exclude_and_category_parameters(shop, read_client):
    response = read_client.get(
        "/api/v1/customers/C1/recommendations",
        {"k": 3, "exclude": "INK-3,NOT-A-PRODUCT", "category": "Kitchen"},
    )

    assert response.status_code == 200
    assert sorted(result_ids(response)) == ["COF-1", "MUG-1", "MUG-2"]


def test_a_cold_customer_with_context_gets_what_goes_with_it(shop, read_client):
    Customer.objects.create(external_id="NEW")

    response = read_client.get(
        "/api/v1/customers/NEW/recommendations", {"k": 2, "context": "MUG-1"}
    )

    assert response.status_code == 200
    assert sorted(result_ids(response)) == ["COF-1", "MUG-2"]
    assert all("session" in r["sources"] for r in response.json()["results"])


def test_a_new_event_changes_the_next_response(shop, read_client):
    before = result_ids(read_client.get("/api/v1/customers/C1/recommendations", {"k": 3}))
    add_event(
        Customer.objects.get(external_id="C1"),
        "MUG-1",
        event_type="add_to_cart",
        at=T0 + timedelta(days=23),
    )

    after = result_ids(read_client.get("/api/v1/customers/C1/recommendations", {"k": 3}))

    # Before: the ink customer's list ends with the two lamps, in an order the tuned default
    # blend leaves to chance; after carting a mug, coffee things take their places.
    assert (before[0], set(before[1:])) == ("INK-3", {"LAMP-1", "LAMP-2"})
    assert after[:2] == ["INK-3", "COF-1"]
    assert after[2] in {"MUG-1", "MUG-2"}  # A carted item is not excluded (only purchases).


def test_inactive_products_are_never_returned(shop, read_client):
    Product.objects.filter(external_id="INK-3").update(is_active=False)

    response = read_client.get("/api/v1/customers/C2/recommendations", {"k": 10})

    assert response.status_code == 200
    assert "INK-3" not in result_ids(response)
    assert len(result_ids(response)) == 5  # 8 products, 2 bought, 1 inactive


def test_session_recommendations_need_no_customer(shop, read_client):
    response = read_client.post(
        "/api/v1/recommendations/session",
        {"events": [{"product_id": "MUG-1", "event_type": "add_to_cart"}], "k": 2},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["kind"] == "session"
    assert sorted(result_ids(response)) == ["COF-1", "MUG-2"]
    assert RecommendationLog.objects.get().customer is None


def test_similar_modes_bought_together_and_trending(shop, read_client):
    semantic = read_client.get("/api/v1/products/MUG-1/similar", {"k": 2})
    behavioural = read_client.get("/api/v1/products/MUG-1/similar", {"k": 2, "mode": "behavioural"})
    together = read_client.get("/api/v1/products/MUG-1/bought-together", {"k": 2})
    trending = read_client.get("/api/v1/products/trending", {"k": 2})

    assert semantic.json()["mode"] == "semantic"
    assert semantic.json()["results"][0]["sources"] == ["semantic"]
    assert semantic.json()["results"][0]["reason"] == "similar to White ceramic coffee mug"
    assert "MUG-1" not in result_ids(behavioural)
    assert sorted(result_ids(together)) == ["COF-1", "MUG-2"]
    assert result_ids(trending) == ["LAMP-1", "LAMP-2"]
    assert [r["reason"] for r in trending.json()["results"]] == ["trending in Home this week"] * 2
    assert RecommendationLog.objects.count() == 4


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/api/v1/customers/NOPE/recommendations", "Customer 'NOPE' not found."),
        ("/api/v1/products/NOPE/similar?mode=hybrid", "Product 'NOPE' not found."),
        ("/api/v1/products/NOPE/bought-together", "Product 'NOPE' not found."),
    ],
)
def test_unknown_ids_are_404_with_a_clear_message(shop, read_client, url, detail):
    response = read_client.get(url)

    assert response.status_code == 404
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "field", "message"),
    [
        ("get", "/api/v1/customers/C1/recommendations?k=0", None, 400, "k",
         "Ensure this value is greater than or equal to 1."),
        ("get", "/api/v1/customers/C1/recommendations?k=many", None, 400, "k",
         "expected a whole number, got 'many'"),
        ("get", "/api/v1/customers/C1/recommendations?k=1.0", None, 400, "k",
         "expected a whole number, got '1.0'"),
        ("get", "/api/v1/customers/C1/recommendations?exclude=INK-3,%20MUG-1", None, 400,
         "exclude", "expected product ids separated by commas; must use only ASCII letters, "
         "digits and - . _ ~ : @ (at least one letter or digit), got ' MUG-1'"),
        ("get", "/api/v1/products/MUG-1/similar?mode=psychic", None, 400, "mode",
         '"psychic" is not a valid choice.'),
        ("get", "/api/v1/products/trending?k=101", None, 400, "k",
         "Ensure this value is less than or equal to 100."),
        # Both lists may be left out by the document, so asking for neither is a rule's 422.
        ("post", "/api/v1/recommendations/session", {"k": 3}, 422, "product_ids",
         "give product_ids or events (at least one product)"),
        ("post", "/api/v1/recommendations/session",
         {"events": [{"product_id": "MUG-1", "event_type": "teleport"}]}, 400,
         "events[0].event_type", '"teleport" is not a valid choice.'),
        ("post", "/api/v1/recommendations/session", {"product_ids": ["MUG-1"], "k": "3"}, 400,
         "k", "expected an integer, got string"),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_naming_the_parameter(
    shop, read_client, method, url, body, status, field, message
):
    response = (
        getattr(read_client, method)(url, body, format="json")
        if body
        else getattr(read_client, method)(url)
    )

    assert response.status_code == status
    assert response.json() == {
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }


def test_before_any_fit_the_answer_says_what_to_do(fresh_serving, read_client):
    Customer.objects.create(external_id="C1")

    response = read_client.get("/api/v1/customers/C1/recommendations")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "No recommendation engine has been fitted yet: run `manage.py train` "
        "or POST /api/v1/jobs/train."
    }


def test_customer_recommendations_cost_a_bounded_number_of_queries(
    shop, read_client, django_assert_max_num_queries, settings
):
    # Running experiments are reread as in production (every few seconds), not per request.
    settings.RECSITE_EXPERIMENTS_REFRESH_SECONDS = 60
    read_client.get("/api/v1/customers/C1/recommendations")  # Loads the engine and the index.

    # Token, customer, excluded ids, events, products, and the log insert (one statement on
    # PostgreSQL outside a transaction; here, inside the test's transaction, a savepoint
    # around it: 3). The test settings recheck for a newer engine build and index on every
    # request (3 small queries); production does so every RECSITE_INDEX_REFRESH_SECONDS.
    with django_assert_max_num_queries(11):
        response = read_client.get(
            "/api/v1/customers/C1/recommendations", {"k": 5, "exclude": "LAMP-1"}
        )

    assert response.status_code == 200


def test_an_admin_can_start_a_fit(shop, admin_client_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_api.post("/api/v1/jobs/train")

    job = Job.objects.get(pk=response.json()["id"])
    assert response.status_code == 202
    assert (job.kind, job.state, job.counts["fit"]["items"]) == (JobKind.TRAIN, "succeeded", 8)
    assert job.counts["fit"]["events"] == 17


def test_the_fast_rendering_equals_the_documented_serializer(shop, read_client):
    # The endpoint builds its body directly (cheaper); the serializer documents it in OpenAPI.
    body = read_client.get("/api/v1/customers/C1/recommendations", {"k": 5}).json()
    result = customer_recommendations(customer=Customer.objects.get(external_id="C1"), k=5)
    items = [
        {
            "product": item.product,
            "score": item.score,
            "sources": list(item.sources),
            "components": dict(item.components),
            "reason": item.reason,
            "reasons": list(item.reasons),
            "promoted": item.promoted,
            "rule_ids": list(item.rule_ids),
        }
        for item in result.items
    ]
    documented = CustomerRecommendationOutputSerializer(
        {
            "recommendation_id": body["recommendation_id"],
            "kind": result.kind,
            "config_version": result.config_version,
            "engine_build": result.engine_build,
            "experiment": None,
            "variant": None,
            "customer_id": "C1",
            "items": items,
        }
    ).data

    assert len(body["results"]) == 5
    assert body == json.loads(json.dumps(documented))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_a_product_payload_is_what_a_new_serializer_gives(db, zone):
    # The payload comes from one serializer kept for the process; its output must be a fresh
    # serializer's for every kind of value, in the timezone active at the call.
    products_upsert(
        records=[
            ProductRecord(
                "P-1", "Lampe à poser « Été »", category="Home/Lights", brand="Lux",
                price=Decimal("12.50"), tags=["warm", "led"], attributes={"watts": 9, "dim": True},
            ),
            ProductRecord("P-2", "Plain mug", description="A mug.\nTwo lines."),
        ]
    )  # fmt: skip
    by_pk = {product.pk: product for product in Product.objects.all()}
    served = products_active(ids=list(by_pk))  # As the serving path reads them (raw).
    assert sorted(served) == sorted(by_pk)
    with timezone.override(zone):
        for pk, product in by_pk.items():
            assert product_payload(served[pk]) == ProductOutputSerializer(product).data
    with timezone.override(zone):
        payload = product_payload(Product.objects.get(external_id="P-1"))
    assert payload["price"] == "12.50"
    assert payload["created_at"].endswith("Z" if zone == "UTC" else "+01:00")


def test_a_product_nobody_bought_yet_fills_an_exposure_slot(shop, read_client):
    # A new cartridge, embedded and indexed, without any event, and a blend without the semantic
    # source: nothing in the blend knows it.
    products_upsert(
        records=[ProductRecord("INK-4", "Brother colour printer ink cartridge", category="Office")]
    )
    product_embeddings_refresh()
    vector_index_build()
    blend = SHOP_CONFIG.replace(source_weights={**SHOP_CONFIG.source_weights, "semantic": 0.0})
    recommendation_config_save(
        config=blend.replace(exposure_slots=1, exposure_min_score=0.0), note="slots"
    )
    engine_build()
    serving_engine_recheck()

    response = read_client.get("/api/v1/customers/C1/recommendations", {"k": 4})

    results = response.json()["results"]
    assert response.status_code == 200
    assert [r["product"]["product_id"] for r in results][3] == "INK-4"  # A list of 4: 1 slot.
    assert results[3]["sources"] == ["exposure"]
    assert results[3]["reason"].startswith("new: similar to what you bought: ")
    assert all(r["sources"][0] != "exposure" for r in results[:3])
    # Without slots the same list has no room for it.
    recommendation_config_save(config=blend.replace(exposure_slots=0), note="no slots")
    serving_engine_recheck()
    assert "INK-4" not in result_ids(
        read_client.get("/api/v1/customers/C1/recommendations", {"k": 4})
    )
