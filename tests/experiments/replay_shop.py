"""A tiny shop whose replay is known by hand (tests of the replay simulator).

Before the replayed period (``DAY``) five customers bought, all at the same moment, so the
popularity of P1..P6 is 5, 4, 3, 2, 1, 0 purchases. In the period, each customer's visits are
listed in ``VISITS`` with what they did; the "popularity only" variant with k = 2 therefore
serves a customer the two most popular products they have not bought before the visit, and
records a click for each listed product they touched then (a cart when they carted or bought
it, a purchase with its value when they bought it). Six customers buy P5 after ``DAY``: an
engine that had seen them would rank P5 first, so lists without P5 show that the engine
learnt only from what happened before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from recommender.ingestion.records import ProductRecord
from recommender.ml.engine import EngineConfig
from recommender.models import Customer, Event, Product, RecommendationConfig
from recommender.services.activity import StatRow, stats_add
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.index import vector_index_build
from recommender.services.ingestion import products_upsert
from recommender.services.recommendations import engine_build

DAY = date(2024, 6, 10)
BEFORE = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

CATALOGUE = [
    ProductRecord("P1", "White ceramic coffee mug", category="Kitchen"),
    ProductRecord("P2", "Blue enamel coffee mug", category="Kitchen"),
    ProductRecord("P3", "Ground coffee beans dark roast", category="Kitchen"),
    ProductRecord("P4", "Glass hanging t-light lantern", category="Home"),
    ProductRecord("P5", "White hanging heart t-light holder", category="Home"),
    ProductRecord("P6", "Canon black printer ink cartridge", category="Office"),
]

HISTORY = {
    "B1": ["P1", "P2", "P3"],
    "B2": ["P1", "P2", "P3"],
    "B3": ["P1", "P2", "P3"],
    "B4": ["P1", "P2", "P4"],
    "B5": ["P1", "P4", "P5"],
}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment ``day`` days after DAY (UTC)."""
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=UTC) + timedelta(days=day)


# customer -> [(moment, product or None, event type, value)], visit by visit.
VISITS: dict[str, list[list[tuple[datetime, str | None, str, str]]]] = {
    "R1": [
        [
            (at(1, 10, 0), "P2", "view", ""),
            (at(1, 10, 5), "P2", "purchase", "10.00"),
            (at(1, 10, 10), "P6", "view", ""),
        ],
        # A day later: P2 is bought now, so it is no longer listed.
        [(at(2, 9, 0), "P1", "purchase", "5.00")],
    ],
    "B1": [[(at(3, 15, 0), "P4", "view", ""), (at(3, 15, 20), "P5", "view", "")]],
    "R2": [[(at(4, 8, 0), None, "search", "")]],
    "R3": [[(at(5, 11, 0), "P2", "add_to_cart", "")]],
    **{f"X{i}": [[(at(6, 10, i), "P5", "purchase", "2.00")]] for i in range(1, 7)},
}


@dataclass(frozen=True)
class Expected:
    """A visitor's replay when the popularity variant serves them, and when the empty one
    does: lists, then impressions, filled, clicks, carts, purchases, revenue, missed."""

    lists: list[list[str]]
    popular: tuple[int, int, int, int, int, float, int]
    empty: tuple[int, int, int, int, int, float, int]


EXPECTED = {
    "R1": Expected([["P1", "P2"], ["P1", "P3"]], (2, 2, 2, 2, 2, 15.0, 1), (2, 0, 0, 0, 0, 0, 3)),
    "B1": Expected([["P4", "P5"]], (1, 1, 2, 0, 0, 0.0, 0), (1, 0, 0, 0, 0, 0.0, 2)),
    "R2": Expected([["P1", "P2"]], (1, 1, 0, 0, 0, 0.0, 0), (1, 0, 0, 0, 0, 0.0, 0)),
    "R3": Expected([["P1", "P2"]], (1, 1, 1, 1, 0, 0.0, 0), (1, 0, 0, 0, 0, 0.0, 1)),
    **{
        f"X{i}": Expected([["P1", "P2"]], (1, 1, 0, 0, 0, 0.0, 1), (1, 0, 0, 0, 0, 0.0, 1))
        for i in range(1, 7)
    },
}

CONFIG = EngineConfig(
    source_weights={
        "semantic": 1.0, "collaborative": 1.0, "popularity": 0.2, "trending": 0.1,
        "new_arrivals": 0.05, "session": 1.0, "social": 0.0,
    },
)  # fmt: skip


def _event(customer: Customer, product: str | None, kind: str, moment: datetime, value: str):
    item = Product.objects.get(external_id=product) if product else None
    n = Event.objects.count()
    Event.objects.create(
        event_id=f"e-{n + 1}",
        customer=customer,
        product=item,
        event_type=kind,
        occurred_at=moment,
        value=Decimal(value) if value else None,
        search_query="mug" if product is None else "",
    )
    if item is not None:
        stats_add(rows=[StatRow(customer.pk, item.pk, kind, moment)])


def replay_shop_build(*, with_engine: bool = True) -> None:
    """The catalogue embedded and indexed, the events recorded, and (``with_engine``) the
    shop's own engine fitted on all of them, as a live shop has."""
    RecommendationConfig.objects.create(
        version=1, config=CONFIG.to_dict(), note="replay shop", is_active=True
    )
    products_upsert(records=CATALOGUE)
    for external_id, bought in HISTORY.items():
        customer = Customer.objects.create(external_id=external_id)
        for item in bought:
            _event(customer, item, "purchase", BEFORE, "1.00")
    for external_id, visits in VISITS.items():
        customer, _ = Customer.objects.get_or_create(external_id=external_id)
        for visit in visits:
            for moment, product, kind, value in visit:
                _event(customer, product, kind, moment, value)
    product_embeddings_refresh()
    vector_index_build()
    if with_engine:
        engine_build()


def visit_starts(customer: str) -> list[datetime]:
    return [visit[0][0] for visit in VISITS[customer]]


def replay_start() -> datetime:
    return timezone.make_aware(datetime.combine(DAY, datetime.min.time()))
