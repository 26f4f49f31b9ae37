"""A synthetic shop for the churn tests: customers who buy at their own pace until they stop.

Seeded, so every run builds the same events. Two named customers bought the same things every
week; STOPPED stopped 90 days before AS_OF, ACTIVE bought two days before it.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from recommender.models import Customer, Event, Product

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 240
AS_OF = T0 + timedelta(days=DAYS)
HORIZON = 30
PRODUCTS = [
    ("TEA-1", "Green tea", "Tea", Decimal("4.50")),
    ("TEA-2", "Black tea", "Tea", Decimal("3.90")),
    ("MUG-1", "Ceramic mug", "Kitchen", Decimal("8.00")),
    ("POT-1", "Tea pot", "Kitchen", Decimal("24.00")),
    ("BIS-1", "Oat biscuits", "Food", Decimal("2.20")),
    ("BIS-2", "Ginger biscuits", "Food", Decimal("2.40")),
]


def _purchase(customer, product, at, n, quantity=1):
    return Event(
        event_id=f"{customer.external_id}-{n}",
        customer=customer,
        product=product,
        event_type="purchase",
        occurred_at=at,
        quantity=quantity,
        value=product.price * quantity,
        session_id=f"{customer.external_id}-{at:%Y%m%d}",
    )


def churn_shop_build(*, customers: int = 160, seed: int = 7) -> dict[str, Customer]:
    products = [
        Product.objects.create(external_id=pid, title=title, category=cat, price=price)
        for pid, title, cat, price in PRODUCTS
    ]
    rng = np.random.default_rng(seed)
    events = []
    for i in range(customers):
        customer = Customer.objects.create(external_id=f"S{i:03d}")
        start = rng.uniform(0, 150)
        stop = min(start + rng.exponential(120), DAYS - 1)
        gap = rng.uniform(5, 25)
        day, n = start, 0
        while day < stop:
            chosen = rng.choice(products, size=int(rng.integers(1, 4)), replace=False)  # type: ignore[arg-type]
            for product in chosen:
                n += 1
                at = T0 + timedelta(days=float(day))
                events.append(_purchase(customer, product, at, n, int(rng.integers(1, 4))))
            day += rng.exponential(gap)
    named = {}
    for external_id, last_day in (("STOPPED", DAYS - 90), ("ACTIVE", DAYS - 2)):
        customer = Customer.objects.create(external_id=external_id)
        named[external_id] = customer
        for n, day in enumerate(range(0, last_day + 1, 7)):
            at = T0 + timedelta(days=day, hours=10)
            events.append(_purchase(customer, products[0], at, 2 * n))
            events.append(_purchase(customer, products[2 + n % 2], at, 2 * n + 1))
    Event.objects.bulk_create(events)
    return named


@pytest.fixture
def churn_settings(settings, tmp_path):
    settings.RECSITE_CHURN_HORIZON_DAYS = HORIZON
    settings.RECSITE_ARTIFACT_DIR = tmp_path / "artifacts"
    from churn import services

    services._models.clear()
    return settings


@pytest.fixture
def churn_shop(db, churn_settings):
    return churn_shop_build()
