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
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECSITE_LOG_LEVEL", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

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
