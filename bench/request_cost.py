"""What a configuration costs per customer list: the recommendations service in-process, on a
prepared database, for the active configuration, the newest version tuned automatically (if
another) and the shipped defaults, with and without the social source, and with a learned
reranker attached, and with the exposure slots off.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/recsite_bench_final \\
        RECSITE_VAR_DIR=/tmp/recsite_bench_final-var \\
        .venv/bin/python bench/request_cost.py [--customers 400] [--rounds 2]

The database is one ``bench/serve.py --keep-db`` leaves (Online Retail, indexed and fitted by
``manage.py train``). Each arm is a configuration version saved through the service, as the
tuning page saves one (the originally active configuration is restored as a new version at the
end); every arm times ``customer_recommendations(k=10, log=False)`` over the same seeded sample
of customers, and the arms alternate round by round so they see the same machine load. The
reranker arm attaches a LambdaRank model trained on random rows (its cost does not depend on
what it learned: it scores the blend's best 100 candidates either way). Printed: the median and
p99 per arm, in milliseconds.

``--versions 2,3,1`` times those saved configuration versions instead of the arms above (each
saved again as an arm, alternating round by round), e.g. the version automatic tuning chose
against one it replaced.

``--rotation`` times rotation instead (docs/merchandising.md, "Rotation"): the active
configuration with rotation off and on (the defaults: rate 0.5, 24 hours, from 3 impressions)
for customer lists and for similar lists. Before timing, every sampled customer is served
``--impressions`` logged customer lists and as many logged similar lists (hybrid, for a product
of their own history, naming them as ``customer``), so with rotation on their top products
are demoted and the demotion's every read happens; the timed calls are not logged, so each arm
sees the same log. Then rotation's reads are timed alone, once per customer (their recent
lists, the demoted products' ids, their newest events). The bench's log rows are deleted at the
end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECSITE_LOG_LEVEL", "WARNING")


def _versions(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected versions such as 2,3,1; got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--rotation", action="store_true", help="Time rotation off vs on (see the docstring)."
    )
    parser.add_argument(
        "--versions",
        type=_versions,
        help="Comma-separated configuration versions to time instead of the arms.",
    )
    parser.add_argument(
        "--impressions", type=int, default=10, help="With --rotation: lists logged per customer."
    )
    args = parser.parse_args()
    if args.rotation:
        rotation_cost(args)
        return

    import django

    django.setup()
    import lightgbm
    import numpy as np

    from recommender.ml.engine import EngineConfig
    from recommender.ml.engine.reranker import FEATURES, Reranker
    from recommender.models import Customer, RecommendationConfig
    from recommender.services.recommendations import (
        customer_recommendations,
        recommendation_config_active,
        recommendation_config_save,
        serving_engine,
        serving_engine_recheck,
    )

    people = list(Customer.objects.filter(events__isnull=False).distinct())
    sample = random.Random(0).sample(people, min(args.customers, len(people)))
    original = recommendation_config_active()
    active = EngineConfig.from_dict(original.config)
    defaults = EngineConfig()

    def without_social(config: EngineConfig) -> EngineConfig:
        return config.replace(source_weights={**config.source_weights, "social": 0.0})

    def without_exposure(config: EngineConfig) -> EngineConfig:
        return config.replace(exposure_slots=0)

    rng = np.random.default_rng(0)
    rows = rng.random((2000, len(FEATURES))).astype(np.float32)
    params = {"objective": "lambdarank", "verbose": -1, "num_leaves": 7, "num_threads": 1}
    booster = lightgbm.train(
        params, lightgbm.Dataset(rows, label=(rows[:, 3] > 0.7).astype(int), group=[100] * 20), 50
    )
    reranker = Reranker(booster.model_to_string(), {})

    arms: dict[str, tuple[EngineConfig, bool]] = {
        f"active v{original.version} ({original.note or 'as saved'})": (active, False),
        "active, social 0": (without_social(active), False),
        "active, no exposure slots": (without_exposure(active), False),
    }
    tuned = RecommendationConfig.objects.filter(tuning__isnull=False).order_by("-version").first()
    if tuned is not None and tuned.version != original.version:
        tuned_config = EngineConfig.from_dict(tuned.config)
        arms[f"auto-tuned v{tuned.version}"] = (tuned_config, False)
        arms[f"auto-tuned v{tuned.version}, social 0"] = (without_social(tuned_config), False)
    arms |= {
        "shipped defaults": (defaults, False),
        "shipped defaults, social 0": (without_social(defaults), False),
        "shipped defaults, no exposure slots": (without_exposure(defaults), False),
        "shipped defaults + a reranker": (defaults, True),
    }
    if args.versions:  # Those saved versions instead.
        arms = {}
        for number in args.versions:
            row = RecommendationConfig.objects.filter(version=number).first()
            if row is None:
                parser.error(f"--versions: no configuration version {number}")
            arms[f"v{number} ({row.note or 'as saved'})"] = (
                EngineConfig.from_dict(row.config),
                False,
            )
    times: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for _ in range(args.rounds):
            for name, (config, rerank) in arms.items():
                recommendation_config_save(config=config, note=f"bench/request_cost.py: {name}")
                serving_engine_recheck()
                engine = serving_engine().engine
                engine.reranker = reranker if rerank else None
                times[name] += _timed(sample, customer_recommendations)
                engine.reranker = None
    finally:
        recommendation_config_save(
            config=original.config, note=f"bench/request_cost.py: restored v{original.version}"
        )
    print(f"{len(sample)} customers x {args.rounds} rounds, k=10, in-process (log=False):")
    for name, values in times.items():
        p99 = statistics.quantiles(values, n=100, method="inclusive")[98]
        print(f"  {name:45s} median {statistics.median(values):6.2f} ms  p99 {p99:6.2f} ms")


def rotation_cost(args: argparse.Namespace) -> None:
    """Customer and similar lists with rotation off and on, in the same run (module docstring)."""
    import django

    django.setup()
    from django.utils import timezone

    from recommender.ml.engine import EngineConfig
    from recommender.ml.engine.config import ROTATION_DEFAULTS
    from recommender.models import Customer, Event, Product, RecommendationLog
    from recommender.ranking.rotation import Rotation, rotation_factors
    from recommender.selectors.catalog import product_pks
    from recommender.selectors.recommendations import customer_recent_events, visitor_recent_lists
    from recommender.services.recommendations import (
        Recommendations,
        customer_recommendations,
        recommendation_config_active,
        recommendation_config_save,
        serving_engine_recheck,
        similar_products,
    )

    started_at = timezone.now()
    people = list(Customer.objects.filter(events__isnull=False).distinct())
    sample = random.Random(0).sample(people, min(args.customers, len(people)))
    # The product page each customer looks at: the newest product of their own history.
    newest = dict(
        Event.objects.filter(customer__in=sample, product__isnull=False)
        .order_by("customer_id", "occurred_at")
        .values_list("customer_id", "product_id")
    )
    products = Product.objects.in_bulk(list(newest.values()))
    sample = [c for c in sample if c.pk in newest]
    original = recommendation_config_active()
    active = EngineConfig.from_dict(original.config)
    on = {kind: dict(ROTATION_DEFAULTS) for kind in ("customer", "similar")}
    arms = {"rotation off": active.replace(rotation={}), "rotation on": active.replace(rotation=on)}

    def customer_list(customer: Customer, log: bool = False) -> Recommendations:
        return customer_recommendations(customer=customer, k=10, log=log)

    def similar_list(customer: Customer, log: bool = False) -> Recommendations:
        product = products[newest[customer.pk]]
        return similar_products(product=product, k=10, mode="hybrid", customer=customer, log=log)

    def serve_with(config: EngineConfig, note: str) -> None:
        recommendation_config_save(config=config, note=f"bench/request_cost.py: {note}")
        serving_engine_recheck()

    serves = {"customer list": customer_list, "similar list (hybrid)": similar_list}
    times: dict[str, list[float]] = {f"{s}, {a}": [] for s in serves for a in arms}
    read_times: dict[str, list[float]] = {}
    try:
        serve_with(arms["rotation off"], "impressions")
        for customer in sample:  # The impressions, logged as the API logs served lists.
            for _ in range(args.impressions):
                customer_list(customer, log=True)
                similar_list(customer, log=True)
        for _ in range(args.rounds):
            for arm, config in arms.items():
                serve_with(config, arm)
                for name, serve in serves.items():
                    times[f"{name}, {arm}"] += _timed_calls(sample, serve)
        # Rotation's reads alone, per customer list: the visitor's recent lists, the ids of
        # what reached the threshold, the customer's newest events (product lists only).
        since = timezone.now() - timedelta(hours=ROTATION_DEFAULTS["hours"])
        rotation = Rotation.from_settings(ROTATION_DEFAULTS)
        recent = {c.pk: visitor_recent_lists(kind="customer", since=since, customer=c)
                  for c in sample}  # fmt: skip
        due = {c.pk: rotation_factors(recent[c.pk], rotation, now=time.time()) for c in sample}
        reads = {
            "the visitor's recent lists": lambda c: visitor_recent_lists(
                kind="customer", since=since, customer=c
            ),
            "their counts (framework-free)": lambda c: rotation_factors(
                recent[c.pk], rotation, now=time.time()
            ),
            "the demoted products' ids": lambda c: product_pks(external_ids=due[c.pk]),
            "the customer's newest events": lambda c: customer_recent_events(customer=c),
        }
        read_times = {name: _timed_calls(sample, read) for name, read in reads.items()}
        # How many lists rotation changed (the same lists, rotation off then on).
        changed = {}
        for name, serve in serves.items():
            serve_with(arms["rotation off"], "compare")
            plain = [_ids(serve(c)) for c in sample]
            serve_with(arms["rotation on"], "compare")
            changed[name] = sum(_ids(serve(c)) != ids for c, ids in zip(sample, plain, strict=True))
    finally:
        serve_with(EngineConfig.from_dict(original.config), f"restored v{original.version}")
        RecommendationLog.objects.filter(created_at__gte=started_at).delete()
    print(
        f"{len(sample)} customers x {args.rounds} rounds, k=10, in-process (log=False); each "
        f"customer was first served {args.impressions} logged lists of each kind. Rotation on "
        f"(rate 0.5, 24 h, from 3 impressions) changed "
        + ", ".join(f"{n} of {len(sample)} {name}s" for name, n in changed.items())
        + ":"
    )
    for name, values in times.items():
        p99 = statistics.quantiles(values, n=100, method="inclusive")[98]
        print(f"  {name:45s} median {statistics.median(values):6.2f} ms  p99 {p99:6.2f} ms")
    for name in serves:
        off, on_ = (statistics.median(times[f"{name}, rotation {a}"]) for a in ("off", "on"))
        print(f"  {name}: rotation on / off, median x{on_ / off:.2f} ({on_ - off:+.2f} ms)")
    print("rotation's reads alone, once per customer:")
    for name, values in read_times.items():
        p99 = statistics.quantiles(values, n=100, method="inclusive")[98]
        print(f"  {name:45s} median {statistics.median(values):6.3f} ms  p99 {p99:6.3f} ms")


def _ids(result: Any) -> list[int]:
    return [item.product.pk for item in result.items]


def _timed_calls(sample: list, serve: Callable[[Any], object]) -> list[float]:
    for customer in sample:
        # Warm: the configuration, and every product this arm shows in the per-process product
        # cache (rotation shows others than the plain lists, which would be first loads).
        serve(customer)
    out = []
    for customer in sample:
        started = time.perf_counter()
        serve(customer)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _timed(sample: list, serve: Callable[..., object]) -> list[float]:
    for customer in sample[:20]:
        serve(customer=customer, k=10, log=False)  # Warm: loads the engine and the caches.
    out = []
    for customer in sample:
        started = time.perf_counter()
        serve(customer=customer, k=10, log=False)
        out.append((time.perf_counter() - started) * 1000)
    return out


if __name__ == "__main__":
    main()
