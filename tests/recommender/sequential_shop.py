"""A shop with an order in it, for the sequential model's build tests: products P0 .. P11, and
30 customers who each buy four products in a row, P(i) then P(i + 1), an hour apart."""

from datetime import timedelta

import numpy as np

from recommender.ingestion.records import ProductRecord
from recommender.ml.engine import EngineConfig
from recommender.models import Customer, RecommendationConfig
from recommender.services import recommendations as service
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.index import vector_index_build
from recommender.services.ingestion import products_upsert
from tests.recommender.shop import T0, add_event

N_PRODUCTS = 12
N_CUSTOMERS = 30


def ordered_shop_build() -> None:
    """The catalogue embedded and indexed, the purchases recorded, and the engine fitted."""
    RecommendationConfig.objects.create(
        version=1, config=EngineConfig().to_dict(), note="test", is_active=True
    )
    products_upsert(
        records=[
            ProductRecord(f"P{i}", f"product number {i}", category=f"C{i % 3}")
            for i in range(N_PRODUCTS)
        ]
    )
    rng = np.random.default_rng(0)
    for c in range(N_CUSTOMERS):
        customer = Customer.objects.create(external_id=f"C{c}")
        start = int(rng.integers(0, N_PRODUCTS))
        for step in range(4):
            at = T0 + timedelta(days=c, hours=step)
            add_event(customer, f"P{(start + step) % N_PRODUCTS}", at=at, session=f"C{c}-{step}")
    product_embeddings_refresh()
    vector_index_build()
    service.engine_build()
