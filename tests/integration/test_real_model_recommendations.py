"""Recommendations with the real all-MiniLM-L6-v2 model: a new product reaches the customers
whose interest matches its meaning as soon as it is embedded, with no refit and no index build."""

import pytest

from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, EngineBuild, IndexBuild, Product
from recommender.services import index as index_service
from recommender.services import recommendations as service
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from recommender.services.ingestion import products_upsert
from tests.recommender.shop import shop_build

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def real_shop(settings, tmp_path):
    """The shop of the unit tests, embedded, indexed and fitted with the real model."""
    settings.RECSITE_EMBEDDER = "transformer"
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    service.serving_engine_reset()
    yield shop_build()
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    service.serving_engine_reset()


def ids(result):
    return [item.product.external_id for item in result.items]


def test_a_new_product_reaches_matching_customers_right_after_it_is_embedded(real_shop):
    assert real_shop.model_name == "all-MiniLM-L6-v2"
    ink_buyer = Customer.objects.get(external_id="C3")  # Bought Canon and Epson ink.
    coffee_buyer = Customer.objects.get(external_id="C4")  # Bought a mug and coffee beans.

    products_upsert(
        records=[ProductRecord("TONER-9", "Brother LC3013 inkjet cartridge, cyan", category="")]
    )
    product_embeddings_refresh()
    for_ink = service.customer_recommendations(customer=ink_buyer, k=3)
    for_coffee = service.customer_recommendations(customer=coffee_buyer, k=3)

    assert (EngineBuild.objects.count(), IndexBuild.objects.count()) == (1, 1)
    assert "TONER-9" in ids(for_ink)
    assert "TONER-9" not in ids(for_coffee)
    new = next(item for item in for_ink.items if item.product.external_id == "TONER-9")
    assert new.sources == ("semantic",)
    assert new.reason in {
        "similar to what you bought: Canon black printer ink cartridge",
        "similar to what you bought: Epson colour printer ink cartridge",
    }


def test_semantic_similar_products_share_the_products_meaning(real_shop):
    mug = Product.objects.get(external_id="MUG-1")

    result = service.similar_products(product=mug, k=2, mode="semantic")

    assert ids(result) == ["MUG-2", "COF-1"]
