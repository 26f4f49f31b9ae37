"""The exposure pool's layout against reading the pool from the fitted arrays, per request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_100k \\
        RECSITE_VAR_DIR=/work/bench-data/var-scale-100k RECSITE_EMBEDDER=hashing \\
        RECSITE_HASHING_DIMENSION=384 DJANGO_SETTINGS_MODULE=recsite.settings.base \\
        .venv/bin/python bench/exposure_pool.py [--customers 300]

On a database ``bench/scale.py --keep-db`` leaves (trained, exposure slots served): customers
with at least 50 events (seeded), their histories read once, then the serving engine's
``recommend`` (k = 10, one BLAS thread) timed in two arms alternating customer by customer:

- **gathered per request**, as before :mod:`recommender.ml.engine.exposure`: the pool's scores
  read from the catalogue's arrays on every request (its vectors gathered from the product
  matrix, its look-alikes gathered from the fitted lists and searched, sorted first, in the
  customer's collaborative columns: ``neighbours.lookup``);
- **pool layout**: :class:`~recommender.ml.engine.exposure.ExposurePool` as served.

Prints both arms' p50 and p99, and how many lists and scores differ (0 expected).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import served_histories  # bench/ is the script's own folder on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()

    import django

    django.setup()
    from threadpoolctl import threadpool_limits

    from recommender.ml import neighbours as nb
    from recommender.ml.engine import sources
    from recommender.ml.engine.exposure import EXPOSURE_BORROWED, ExposurePool, exposure_pool

    serving, ann, histories = served_histories(args.customers)
    engine = serving.engine
    laid_out = exposure_pool(engine)

    class GatheredPool(ExposurePool):
        """The same rows, scored from the catalogue's arrays on every call."""

        def scores(self, centroids: np.ndarray, cols: np.ndarray, sums: np.ndarray) -> np.ndarray:
            rows = self.rows
            values = np.asarray(engine._vectors[rows] @ centroids.T, dtype=np.float64).max(axis=1)
            top = float(sums.max()) if len(sums) else 0.0
            if top <= 0 or not engine._cold.nnz:
                return values
            lookalikes, cosines, owners = engine._cold.gather(rows, np.ones(len(rows)))
            borrowed = cosines * np.maximum(nb.lookup(cols, sums, lookalikes), 0.0)
            best = np.zeros(len(rows), dtype=np.float64)
            np.maximum.at(best, np.searchsorted(rows, owners), borrowed)
            return values + EXPOSURE_BORROWED * best / top

    gathered = GatheredPool(**laid_out.__dict__)
    arms = {"gathered per request": gathered, "pool layout": laid_out}
    print(
        f"served: exposure slots {engine.config.exposure_slots}, reranker "
        f"{engine.reranker is not None}, sequential {engine._sequential is not None}; "
        f"pool of {len(laid_out.rows)} products, {len(laid_out.local)} look-alike entries"
    )
    times: dict[str, list[float]] = {name: [] for name in arms}
    differing = 0
    score_difference = 0.0

    def recommend(name: str, history: object, now: float) -> list:  # type: ignore[type-arg]
        sources.exposure_pool = lambda _engine: arms[name]  # type: ignore[assignment]
        return engine.recommend(history, k=10, now=now, ann=ann)  # type: ignore[arg-type]

    try:
        with threadpool_limits(limits=1, user_api="blas"):
            for history, now in histories[:20]:  # Warm.
                for name in arms:
                    recommend(name, history, now)
            for i, (history, now) in enumerate(histories):
                lists = {}
                for name in list(arms) if i % 2 == 0 else list(reversed(arms)):
                    started = time.perf_counter()
                    lists[name] = recommend(name, history, now)
                    times[name].append(time.perf_counter() - started)
                before, after = lists.values()
                if [x.product_id for x in before] != [x.product_id for x in after]:
                    differing += 1
                else:
                    gaps = [abs(x.score - y.score) for x, y in zip(before, after, strict=True)]
                    score_difference = max(score_difference, *gaps)
    finally:
        sources.exposure_pool = exposure_pool
    for name, found in times.items():
        found.sort()
        p99 = found[min(len(found) - 1, int(0.99 * len(found)))]
        median = statistics.median(found)
        print(f"{name:22s} p50 {1000 * median:6.2f} ms  p99 {1000 * p99:6.2f} ms")
    print(
        f"{len(histories)} customers: {differing} lists differ; largest score difference "
        f"{score_difference}"
    )


if __name__ == "__main__":
    main()
