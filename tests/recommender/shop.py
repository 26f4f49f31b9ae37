"""A small shop for the recommendation tests: three kinds of product, baskets that make each
kind co-occur, embedded and indexed with the hashing embedder, and a fitted engine."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.color import no_style
from django.db import connection

from recommender.ingestion.records import ProductRecord
from recommender.ml.engine import EngineConfig
from recommender.models import Customer, Event, Product, RecommendationConfig
from recommender.services import index as index_service
from recommender.services import recommendations as service
from recommender.services.activity import StatRow, stats_add
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from recommender.services.index import vector_index_build
from recommender.services.ingestion import products_upsert
from recommender.services.merchandising import merchandising_rules_cache_reset

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

CATALOGUE = [
    ProductRecord("INK-1", "HP 78 tri-colour printer ink cartridge", category="Office"),
    ProductRecord("INK-2", "Canon black printer ink cartridge", category="Office"),
    ProductRecord("INK-3", "Epson colour printer ink cartridge", category="Office"),
    ProductRecord("MUG-1", "White ceramic coffee mug", category="Kitchen"),
    ProductRecord("MUG-2", "Blue enamel coffee mug", category="Kitchen"),
    ProductRecord("COF-1", "Ground coffee beans dark roast", category="Kitchen"),
    ProductRecord("LAMP-1", "White hanging heart t-light holder", category="Home"),
    ProductRecord("LAMP-2", "Glass hanging t-light lantern", category="Home"),
]

# customer -> baskets (day offset from T0, product ids), all purchases.
BASKETS = {
    "C1": [(0, ["INK-1", "INK-2"])],
    "C2": [(1, ["INK-1", "INK-2", "INK-3"])],
    "C3": [(2, ["INK-2", "INK-3"])],
    "C4": [(3, ["MUG-1", "COF-1"])],
    "C5": [(4, ["MUG-1", "MUG-2", "COF-1"])],
    "C6": [(20, ["LAMP-1", "LAMP-2"])],
    "C7": [(21, ["LAMP-1", "LAMP-2"])],
    "C8": [(22, ["LAMP-1"])],
}


def add_event(customer, external_id, *, event_type="purchase", at=T0, session=""):
    """One event, written as ingestion writes it: counted in the event aggregates too."""
    product = Product.objects.get(external_id=external_id)
    n = Event.objects.count()
    event = Event.objects.create(
        event_id=f"e-{n + 1}",
        customer=customer,
        product=product,
        event_type=event_type,
        occurred_at=at,
        session_id=session,
    )
    stats_add(rows=[StatRow(customer.pk, product.pk, event_type, at)])
    return event


@pytest.fixture
def fresh_serving(settings, tmp_path):
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    service.serving_engine_reset()
    merchandising_rules_cache_reset()
    yield
    index_service.serving_index_reset()
    service.serving_engine_reset()
    merchandising_rules_cache_reset()


@pytest.fixture
def shop(fresh_serving):
    """The catalogue embedded and indexed, the baskets recorded, and the engine fitted."""
    return shop_build()


# The shop's engine configuration is pinned here, not taken from EngineConfig's defaults: these
# tests check mechanics (sources, reasons, exclusions, real time), and the default blend is
# retuned on real data from time to time (docs/evaluation.md).
SHOP_CONFIG = EngineConfig(
    source_weights={
        "semantic": 1.0, "collaborative": 1.0, "popularity": 0.2, "trending": 0.1,
        "new_arrivals": 0.05, "session": 1.0, "social": 0.0, "exposure": 0.0, "sequential": 0.0,
    },
    half_life_days=30.0,
    n_interests=3,
)  # fmt: skip


def shop_build(*, line_gap: timedelta = timedelta(0)):
    """``line_gap`` apart, the lines of a basket have distinct times in the order listed; by
    default they share the basket's time (as an invoice's lines do), and then their order is the
    seeded tie order of the splits (``recommender.ml.interactions.tie_keys``), not the list's.

    The tie order hashes the rows' keys, so they are made the same in every test: PostgreSQL's
    sequences are not rolled back with a test's transaction, and the keys would otherwise depend
    on the tests that ran before in the same process (SQLite's are rolled back)."""
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Customer, Product]):
            cursor.execute(statement)
    RecommendationConfig.objects.create(
        version=1, config=SHOP_CONFIG.to_dict(), note="test shop", is_active=True
    )
    products_upsert(records=CATALOGUE)
    for external_id, baskets in BASKETS.items():
        customer = Customer.objects.create(external_id=external_id)
        for day, items in baskets:
            for line, item in enumerate(items):
                at = T0 + timedelta(days=day) + line * line_gap
                add_event(customer, item, at=at, session=f"{external_id}-{day}")
    product_embeddings_refresh()
    vector_index_build()
    return service.engine_build()
