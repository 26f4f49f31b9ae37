"""What merchandising rules cost on the customer recommendations and similar-products services.

    nice -n 10 .venv/bin/python bench/rules.py [--products 4000] [--customers 3000]
        [--events 120000] [--requests 400] [--rules 20]

Builds a synthetic shop in a throw-away test database (SQLite under the test settings, or your
own PostgreSQL database with ``DATABASE_URL``): products in 40 categories and 25 brands, 5% of
them out of stock, customers who buy mostly in a favourite category; embeds them with the
hashing embedder, builds the index and fits the engine. Then it times
``customer_recommendations(k=10)`` over a fixed sample of customers (seeded), alternating
request by request between no rules and ``--rules`` rules of every kind (boosts by category,
buries by brand, filters incl. out of stock, pins, promotion slots), so both arms see the same
machine load; then the same for ``similar_products(k=10, mode="hybrid")`` over a sample of
products. Also printed: the time to compile the rules (a query per rule, once per change or
minute) and the cost of the cached lookup every request pays.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.test")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=4000)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--requests", type=int, default=400, help="Timed requests per arm.")
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"p50 {statistics.median(ordered):6.2f} ms  p90 {at(0.9):6.2f} ms  "
        f"p99 {at(0.99):6.2f} ms  max {ordered[-1]:6.2f} ms"
    )


def build_shop(args: argparse.Namespace, rng: random.Random) -> None:
    from recommender.models import Customer, Event, Product
    from recommender.services.embeddings import product_embeddings_refresh
    from recommender.services.index import vector_index_build
    from recommender.services.recommendations import engine_build

    nouns = ["mug", "lamp", "candle", "bag", "card", "box", "tin", "clock", "frame", "cushion"]
    adjectives = ["red", "blue", "vintage", "glass", "paper", "wooden", "large", "small", "pink"]
    Product.objects.bulk_create(
        Product(
            external_id=f"P{i}",
            title=f"{rng.choice(adjectives)} {rng.choice(nouns)} {i % 40}",
            category=f"cat-{i % 40}",
            brand=f"brand-{i % 25}",
            price=Decimal(rng.randint(100, 10_000)) / 100,
            attributes={"in_stock": rng.random() >= 0.05},
            tags=["summer"] if i % 17 == 0 else [],
        )
        for i in range(args.products)
    )
    Customer.objects.bulk_create(Customer(external_id=f"C{i}") for i in range(args.customers))
    products = list(Product.objects.values_list("pk", "category"))
    by_category: dict[str, list[int]] = {}
    for pk, category in products:
        by_category.setdefault(category, []).append(pk)
    customers = list(Customer.objects.values_list("pk", flat=True))
    taste = {c: f"cat-{rng.randrange(40)}" for c in customers}
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    events = []
    for n in range(args.events):
        customer = rng.choice(customers)
        pool = by_category[taste[customer]] if rng.random() < 0.7 else None
        product = rng.choice(pool) if pool else rng.choice(products)[0]
        events.append(
            Event(
                event_id=f"e{n}",
                customer_id=customer,
                product_id=product,
                event_type="purchase" if rng.random() < 0.5 else "view",
                occurred_at=t0 + timedelta(minutes=rng.randrange(200_000)),
            )
        )
    Event.objects.bulk_create(events, batch_size=5000)
    product_embeddings_refresh()
    vector_index_build()
    engine_build()


def create_rules(count: int, rng: random.Random) -> None:
    from recommender.models import Product
    from recommender.services.merchandising import merchandising_rule_create

    ids = list(Product.objects.values_list("external_id", flat=True))
    kinds = [
        ("boost", "category", {"factor": 1.5}),
        ("bury", "brand", {"factor": 0.5}),
        ("filter", "out_of_stock", {}),
        ("pin", "product", {"position": 1}),
        ("promote", "brand", {"share": 0.2}),
        ("boost", "tag", {"factor": 2.0}),
        ("bury", "price_range", {"factor": 0.7}),
    ]
    for n in range(count):
        action, target, params = kinds[n % len(kinds)]
        values: list[str] = []
        extra: dict[str, object] = {}
        if target == "category":
            values = [f"cat-{rng.randrange(40)}" for _ in range(3)]
        elif target == "brand":
            values = [f"brand-{rng.randrange(25)}"]
        elif target == "product":
            values = [rng.choice(ids)]
            params = {"position": 1 + n % 5}
        elif target == "tag":
            values = ["summer"]
        elif target == "price_range":
            extra = {"price_min": "80", "price_max": "100"}
        merchandising_rule_create(
            data={"name": f"rule {n}", "action": action, "target_kind": target,
                  "target_values": values, "priority": n % 3, **params, **extra}
        )  # fmt: skip


def main() -> None:
    args = parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from recommender.models import Customer, Product
    from recommender.ranking.rules import RuleSet
    from recommender.services import recommendations as service
    from recommender.services.merchandising import (
        merchandising_rules_cache_reset,
        merchandising_rules_serving,
    )

    setup_test_environment()
    settings.RECSITE_INDEX_DIR = Path(settings.RECSITE_VAR_DIR) / "bench-rules-index"
    # Production-like: the engine/index freshness checks every 5 s, not per request.
    settings.RECSITE_INDEX_REFRESH_SECONDS = 5.0
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        rng = random.Random(args.seed)
        started = time.perf_counter()
        build_shop(args, rng)
        print(
            f"shop: {args.products} products, {args.customers} customers, {args.events} events "
            f"({connection.vendor}), built in {time.perf_counter() - started:.1f} s"
        )
        create_rules(args.rules, rng)
        merchandising_rules_cache_reset()
        started = time.perf_counter()
        compiled = merchandising_rules_serving()
        compile_ms = (time.perf_counter() - started) * 1000
        print(f"compile {len(compiled)} rules (cold cache): {compile_ms:.1f} ms")
        started = time.perf_counter()
        for _ in range(10_000):
            merchandising_rules_serving()
        lookup_us = (time.perf_counter() - started) / 10_000 * 1e6
        print(f"cached lookup per request: {lookup_us:.1f} µs")

        sample = rng.sample(list(Customer.objects.all()), min(args.requests, args.customers))
        empty = RuleSet()
        ruled_arm = f"{args.rules} rules"

        def compare(
            label: str, serve: Callable[[Any, RuleSet | None], Any], subjects: list[Any]
        ) -> None:
            """Time ``serve(subject, rules)`` with no rules and with the saved ones, alternating."""
            for subject in subjects[:20]:  # Warm up: engine load, caches.
                serve(subject, None)
                serve(subject, empty)
            timings: dict[str, list[float]] = {"no rules": [], ruled_arm: []}
            changed = 0
            for subject in subjects:
                t = time.perf_counter()
                plain = serve(subject, empty)
                timings["no rules"].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                ruled = serve(subject, None)
                timings[ruled_arm].append((time.perf_counter() - t) * 1000)
                changed += [i.product.pk for i in plain.items] != [
                    i.product.pk for i in ruled.items
                ]
            print(label)
            for arm, values in timings.items():
                print(f"{arm:>10}: {len(values)} requests  {percentiles(values)}")
            base = statistics.median(timings["no rules"])
            with_rules = statistics.median(timings[ruled_arm])
            print(
                f"median cost of the rules: {with_rules - base:+.2f} ms a request "
                f"({with_rules / base:.2f} x); lists changed by the rules: "
                f"{changed}/{len(subjects)}"
            )

        compare(
            "customer_recommendations(k=10)",
            lambda c, r: service.customer_recommendations(customer=c, k=10, rules=r),
            sample,
        )
        products = rng.sample(list(Product.objects.all()), min(args.requests, args.products))
        compare(
            'similar_products(k=10, mode="hybrid")',
            lambda p, r: service.similar_products(product=p, k=10, mode="hybrid", rules=r),
            products,
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
