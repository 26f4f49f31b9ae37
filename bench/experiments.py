"""What a running experiment adds to a served customer list: assignment and the wider log row.

    nice -n 10 .venv/bin/python bench/experiments.py [--products 4000] [--customers 3000]
        [--events 120000] [--requests 1000]

Builds the synthetic shop of ``bench/rules.py`` in a throw-away test database (your PostgreSQL
database's ``test_`` twin with ``DATABASE_URL``), embeds it with the hashing embedder, builds
the index and fits the engine. Starts a 50/50 experiment on customer lists whose two variants
both serve the active configuration (so both arms compute the same lists), then times
``customer_recommendations(k=10)`` over a fixed sample of customers (seeded), alternating
request by request between the experiment hook switched off (no assigner registered: what a
shop without the experiments app runs) and on (the variant looked up from the in-process cache
of running experiments, refreshed every 5 s as in production, and experiment and variant written
with the log row). Both arms write the log row, as every served list does.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.test")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=4000)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--requests", type=int, default=1000, help="Timed requests per arm.")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    args = parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment
    from django.utils import timezone
    from rules import build_shop  # bench/rules.py's synthetic shop

    from experiments import services as experiments
    from recommender.models import Customer
    from recommender.services import recommendations as service
    from recommender.services.recommendations import variants

    setup_test_environment()
    settings.RECSITE_INDEX_DIR = Path(settings.RECSITE_VAR_DIR) / "bench-experiments-index"
    # Production-like refreshes: the engine, index and running experiments every 5 s.
    settings.RECSITE_INDEX_REFRESH_SECONDS = 5.0
    settings.RECSITE_EXPERIMENTS_REFRESH_SECONDS = 5.0
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        rng = random.Random(args.seed)
        started = time.perf_counter()
        build_shop(args, rng)  # type: ignore[arg-type]
        print(
            f"shop: {args.products} products, {args.customers} customers, {args.events} events "
            f"({connection.vendor}), built in {time.perf_counter() - started:.1f} s"
        )
        experiment = experiments.experiment_create(
            spec=experiments.ExperimentSpec(
                name="overhead",
                lists=["customer"],
                variants=[experiments.VariantSpec("a", 50), experiments.VariantSpec("b", 50)],
                starts_at=timezone.now() - timedelta(minutes=1),
            )
        )
        experiments.experiment_start(experiment=experiment)
        registered = list(variants._assigners)
        sample = rng.sample(list(Customer.objects.all()), min(args.requests, args.customers))

        def serve(customer: Customer, hook: bool) -> object:
            variants._assigners[:] = registered if hook else []
            return service.customer_recommendations(customer=customer, k=10)

        for customer in sample[:50]:  # Warm up: engine, index, caches.
            serve(customer, False)
            serve(customer, True)
        timings: dict[bool, list[float]] = {False: [], True: []}
        tagged = 0
        for i, customer in enumerate(sample):
            for hook in (False, True) if i % 2 == 0 else (True, False):
                t = time.perf_counter()
                result = serve(customer, hook)
                timings[hook].append((time.perf_counter() - t) * 1000)
                tagged += bool(hook and getattr(result, "variant", None))
        variants._assigners[:] = registered
        for hook, label in ((False, "no experiment"), (True, "experiment running")):
            values = timings[hook]
            print(
                f"{label:>20}: p50 {statistics.median(values):6.2f} ms  "
                f"p90 {percentile(values, 0.9):6.2f} ms  p99 {percentile(values, 0.99):6.2f} ms"
                f"  (n={len(values)})"
            )
        d50 = statistics.median(timings[True]) - statistics.median(timings[False])
        d99 = percentile(timings[True], 0.99) - percentile(timings[False], 0.99)
        print(f"added: p50 {d50:+.3f} ms, p99 {d99:+.3f} ms; lists with a variant: {tagged}")
        started = time.perf_counter()
        for customer in sample:
            experiments.experiment_variant_for("customer", f"c:{customer.external_id}")
        per_call = (time.perf_counter() - started) / len(sample) * 1e6
        print(f"assignment alone (cached experiments, hash): {per_call:.1f} µs per list")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
