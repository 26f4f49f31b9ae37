"""What each served feature costs a request: the serving engine alone, arm by arm.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_100k \\
        RECSITE_VAR_DIR=/work/bench-data/var-scale-100k RECSITE_EMBEDDER=hashing \\
        RECSITE_HASHING_DIMENSION=384 DJANGO_SETTINGS_MODULE=recsite.settings.base \\
        .venv/bin/python bench/engine_arms.py [--customers 300] \\
        [--sorted-search | --candidates 100,50 | --ef 64]

On a database ``bench/scale.py --keep-db`` leaves: customers with at least 50 events (seeded),
their histories read once, then ``engine.recommend`` (k = 10) timed per arm, the arms alternating
customer by customer (order reversed every other customer). Each arm is ``with_config`` of the
serving engine (a shallow copy): as served; without the sequential source, the learned reranker
or the exposure slots (those that serve); without all three; the shipped defaults without them.

``--candidates 100,50`` times the served engine against copies with those
``candidates_per_source`` instead (everything else as served), and prints the share of each
copy's top 10 that the served list also holds.

``--ef 64`` times the served engine against the same engine searching the serving index
loaded again with that ``ef_search`` (hnswlib's search breadth; the build's is 128 by default,
``RECSITE_INDEX_EF_SEARCH``), and prints the same share: what a narrower first-stage search
saves, and how much of the list it changes.

``--sorted-search`` times two arms instead, the served engine with
``recommender.ml.sorted_search`` sorting keys (from 512) and never sorting them, and asserts the
two lists are identical.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("RECSITE_LOG_LEVEL", "WARNING")

from _support import served_histories  # bench/ is the script's own folder on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--sorted-search", action="store_true")
    choice.add_argument(
        "--candidates", default="", help="Comma-separated candidates_per_source arms, e.g. 100,50."
    )
    choice.add_argument("--ef", default="", help="Comma-separated ef_search arms, e.g. 64,32.")
    args = parser.parse_args()

    import django

    django.setup()
    from threadpoolctl import threadpool_limits

    import recommender.ml.sorted_search as sorted_search
    from recommender.ml.engine import EngineConfig, HybridEngine

    serving, ann, histories = served_histories(args.customers)
    engine = serving.engine
    cfg = engine.config

    def without(
        config: EngineConfig, *, sequential: bool, exposure: bool, reranker: bool
    ) -> HybridEngine:
        weights = dict(config.source_weights)
        if sequential:
            weights["sequential"] = 0.0
        copy = engine.with_config(
            config.replace(
                source_weights=weights, exposure_slots=0 if exposure else config.exposure_slots
            )
        )
        if reranker:
            copy.reranker = None
        return copy

    arms = {"as served": engine}
    searches = {"as served": ann}
    depths = [int(n) for n in args.candidates.split(",") if n]
    breadths = [int(n) for n in args.ef.split(",") if n]
    if breadths:
        for ef in breadths:
            arms[f"ef_search {ef}"] = engine
            searches[f"ef_search {ef}"] = _searching_with_ef(ann, ef)
    elif depths:
        for depth in depths:
            arms[f"candidates_per_source {depth}"] = engine.with_config(
                cfg.replace(candidates_per_source=depth)
            )
    elif not args.sorted_search:
        if engine._sequential is not None:
            arms["without the sequential source"] = without(
                cfg, sequential=True, exposure=False, reranker=False
            )
        if engine.reranker is not None:
            arms["without the reranker"] = without(
                cfg, sequential=False, exposure=False, reranker=True
            )
        arms["without exposure slots"] = without(
            cfg, sequential=False, exposure=True, reranker=False
        )
        arms["without the three"] = without(cfg, sequential=True, exposure=True, reranker=True)
        arms["shipped defaults without the three"] = without(
            EngineConfig(), sequential=True, exposure=True, reranker=True
        )
    else:
        arms["never sorting keys"] = engine
    threshold = sorted_search.SORT_KEYS_FROM
    print(
        f"served: reranker {engine.reranker is not None}, "
        f"sequential {engine._sequential is not None}, exposure slots {cfg.exposure_slots}; "
        f"{len(histories)} customers, "
        f"{statistics.mean(len(h.product_ids) for h, _ in histories):.1f} events on average"
    )
    times: dict[str, list[float]] = {name: [] for name in arms}
    kept: dict[str, int] = dict.fromkeys(arms, 0)
    with threadpool_limits(limits=1, user_api="blas"):
        for history, now in histories[:20]:  # Warm.
            for name, arm in arms.items():
                arm.recommend(history, k=10, now=now, ann=searches.get(name, ann))
        for i, (history, now) in enumerate(histories):
            lists = {}
            for name in list(arms) if i % 2 == 0 else list(reversed(arms)):
                sorted_search.SORT_KEYS_FROM = 10**12 if name == "never sorting keys" else threshold
                started = time.perf_counter()
                lists[name] = arms[name].recommend(
                    history, k=10, now=now, ann=searches.get(name, ann)
                )
                times[name].append(time.perf_counter() - started)
            if args.sorted_search:
                ids = [[item.product_id for item in found] for found in lists.values()]
                assert ids[0] == ids[1], "the two arms' lists differ"
            served = {item.product_id for item in lists["as served"]}
            for name, found in lists.items():
                kept[name] += sum(item.product_id in served for item in found)
    sorted_search.SORT_KEYS_FROM = threshold
    for name, found in times.items():
        found.sort()
        p99 = found[min(len(found) - 1, int(0.99 * len(found)))]
        share = kept[name] / (10 * len(histories))
        print(
            f"{name:40s} p50 {1000 * statistics.median(found):6.2f} ms  p99 {1000 * p99:6.2f} ms"
            f"  top 10 shared with the served list {share:.3f}"
        )


def _searching_with_ef(ann: Any, ef: int) -> Any:
    """The serving index ``ann`` with its graph loaded again, searched at ``ef``."""
    import dataclasses

    from recommender.services.index import index_build_load

    if ann is None or ann.build is None:
        raise SystemExit("--ef needs a serving vector index (a READY index build)")
    return dataclasses.replace(ann, index=index_build_load(ann.build, ef_search=ef))


if __name__ == "__main__":
    main()
