"""Where the serving engine's time goes inside one list: each stage of ``engine.recommend``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_100k \\
        RECSITE_VAR_DIR=/work/bench-data/var-scale-100k RECSITE_EMBEDDER=hashing \\
        RECSITE_HASHING_DIMENSION=384 DJANGO_SETTINGS_MODULE=recsite.settings.base \\
        .venv/bin/python bench/engine_stages.py [--customers 300]

On a database ``bench/scale.py --keep-db`` or ``bench/serve.py --keep-db`` leaves: customers with
at least 50 events (seeded), their histories read once, then the serving engine's
``recommend`` (k = 10, the serving index as its search, one BLAS thread) twice over them, the
second time with a wall-clock timer around each stage: the history's profile (and its
interests, ``multi_interest``), each source's proposal and its exact scores on the candidate
set, the index searches, the neighbour entries gathered, the collaborative sum by product, the
blend, the reranker, the rules-and-diversity pass and the reasons. Stages nest (a source's
proposal includes its index searches), so the lines do not add up to the total; each is its own
mean per list. The timers cost about a microsecond each, a few per cent of a list.

``--network``: the histories carry each customer's social network (as a list served with the
social source reads it; on a database with relationships, e.g. ``bench/serve.py
--relationships``), and the timed pass runs twice, with the networks and then the same
histories without them: what the social source costs inside the engine, stage by stage.

``bench/engine_arms.py`` compares whole configurations; this says which stage to work on (the
eleventh session found ``multi_interest`` and the collaborative sum this way:
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("RECSITE_LOG_LEVEL", "WARNING")

from _support import served_histories  # bench/ is the script's own folder on sys.path

SECONDS: defaultdict[str, float] = defaultdict(float)


def timed(function: Callable[..., Any], label: Callable[..., str]) -> Callable[..., Any]:
    """``function`` with its wall time added to ``SECONDS[label(*args)]`` at every call."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[label(*args, **kwargs)] += time.perf_counter() - started

    return wrapper


class TimedSearch:
    """The serving index's search with its wall time under "index searches", one query at a
    time and (``many``, as the semantic proposal asks for a customer's interests) all at once."""

    def __init__(self, ann: Any) -> None:
        label = lambda *a, **k: "index searches"  # noqa: E731
        self._one = timed(ann, label)
        if hasattr(ann, "many"):  # Else the engine asks one interest at a time, as it would.
            self.many = timed(ann.many, label)

    def __call__(self, vector: Any, n: int) -> Any:
        return self._one(vector, n)


def instrument(engine: Any) -> None:
    """Put the stage timers on the engine's modules and on this engine's models."""
    from recommender.ml import neighbours as nb
    from recommender.ml.engine import candidates, explanation, scoring, sources

    candidates.build_profile = timed(candidates.build_profile, lambda *a, **k: "profile")
    candidates.multi_interest = timed(
        candidates.multi_interest, lambda *a, **k: "profile: multi_interest"
    )
    generation = sources.Generation
    generation.propose = timed(  # type: ignore[method-assign]
        generation.propose, lambda self, source, **k: f"propose: {source}"
    )
    generation.score = timed(  # type: ignore[method-assign]
        generation.score, lambda self, source, *a, **k: f"score: {source}"
    )
    generation._collaborative = timed(  # type: ignore[method-assign]
        generation._collaborative, lambda *a, **k: "collaborative: sum by product"
    )
    # The engine calls these through their modules (``scoring.fuse(...)``).
    scoring.fuse = timed(scoring.fuse, lambda *a, **k: "blend (fuse)")
    scoring.recommend_fused = timed(scoring.recommend_fused, lambda *a, **k: "rules, diversity")
    sources.social_scores = timed(sources.social_scores, lambda *a, **k: "social scoring")
    explanation.with_reasons = timed(explanation.with_reasons, lambda *a, **k: "reasons")
    # Every source that reads neighbour lists (collaborative, session, the cold look-alikes).
    neighbours = nb.Neighbours
    neighbours.gather = timed(  # type: ignore[method-assign]
        neighbours.gather, lambda *a, **k: "neighbour entries gathered"
    )
    if engine.reranker is not None:
        engine.reranker.rescore = timed(engine.reranker.rescore, lambda *a, **k: "reranker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument(
        "--network", action="store_true", help="Time with and without each social network."
    )
    args = parser.parse_args()

    import django

    django.setup()
    from dataclasses import replace

    from threadpoolctl import threadpool_limits

    serving, ann, histories = served_histories(args.customers, with_network=args.network)
    engine = serving.engine
    search = TimedSearch(ann)
    cfg = engine.config
    print(
        f"served: {cfg.n_interests} interests, {cfg.candidates_per_source} candidates per "
        f"source, sequential {engine._sequential is not None}, reranker "
        f"{engine.reranker is not None}, exposure slots {cfg.exposure_slots}; "
        f"{len(histories)} customers"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        for history, now in histories:  # Warm, untimed.
            engine.recommend(history, k=10, now=now, ann=ann)
        instrument(engine)
        passes = {"": histories}
        if args.network:
            sizes = sorted(len(h.network) for h, _ in histories)
            print(f"networks: {sizes[len(sizes) // 2]} members at the median")
            passes = {
                "with their networks: ": histories,
                "without: ": [(replace(h, network=()), now) for h, now in histories],
            }
        for label, timed_histories in passes.items():
            SECONDS.clear()
            started = time.perf_counter()
            for history, now in timed_histories:
                engine.recommend(history, k=10, now=now, ann=search)
            total = time.perf_counter() - started
            n = len(timed_histories)
            print(f"{label + 'whole list (engine.recommend)':40s} {1000 * total / n:7.3f} ms")
            for stage, seconds in sorted(SECONDS.items(), key=lambda kv: -kv[1]):
                print(f"  {stage:38s} {1000 * seconds / n:7.3f} ms")


if __name__ == "__main__":
    main()
