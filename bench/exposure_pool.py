"""The exposure pool's layout against reading the pool from the fitted arrays, per request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_100k \\
        RECSITE_VAR_DIR=/work/bench-data/var-scale-100k RECSITE_EMBEDDER=hashing \\
        RECSITE_HASHING_DIMENSION=384 DJANGO_SETTINGS_MODULE=recsite.settings.base \\
        .venv/bin/python bench/exposure_pool.py [--customers 300]

On a database ``bench/scale.py --keep-db`` leaves (trained, exposure slots served): customers
with at least 50 events (seeded), their histories read once, then the serving engine's
``recommend`` (k = 10, one BLAS thread) timed in two arms alternating customer by customer:
``Generation._exposure`` as it was before :mod:`recommender.ml.engine.exposure` (the pool's
vectors gathered and its look-alikes searched in every request, kept here as the baseline) and
as it is. Prints both arms' p50 and p99, and how many lists and scores differ (0 expected).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()

    import django

    django.setup()
    from threadpoolctl import threadpool_limits

    from recommender.ml.collaborative import top_k
    from recommender.ml.engine import sources
    from recommender.ml.engine.exposure import EXPOSURE_POOL
    from recommender.models import Customer, CustomerActivity
    from recommender.selectors.recommendations import customer_recent_events
    from recommender.services import recommendations as service
    from recommender.services.recommendations.lists import _history

    def old_exposure(self, size, search):  # type: ignore[no-untyped-def]
        engine = self.engine
        empty = np.empty(0, dtype=np.int64)
        if not self.profile.interests:
            return empty, np.empty(0), []
        newest = np.asarray(engine._new_top[:EXPOSURE_POOL], dtype=np.int64)
        parts = [newest[np.asarray(engine._has_vector[newest], dtype=bool)]]
        blind = {}
        extra = {}
        if self._category_searched_exactly():
            rows = engine.category_rows(self.code).astype(np.int64)
            parts.append(rows[engine._has_vector[rows] & ~engine._has_events[rows]])
        else:
            searched = self._searched(size, search)
            ids = np.fromiter(searched, dtype=np.int64, count=len(searched))
            scores = np.fromiter(searched.values(), dtype=np.float64, count=len(searched))
            rows = engine._rows_of(ids)
            newer = rows < 0
            if self.code < 0:
                extra = {
                    pid: score
                    for pid, score in zip(ids[newer].tolist(), scores[newer].tolist(), strict=True)
                    if score > 0
                }
            rows, scores = rows[~newer], scores[~newer]
            cold = ~np.asarray(engine._has_events[rows], dtype=bool)
            rows, scores = rows[cold], scores[cold]
            sighted = np.asarray(engine._has_vector[rows], dtype=bool)
            parts.append(rows[sighted])
            blind = dict(zip(rows[~sighted].tolist(), scores[~sighted].tolist(), strict=True))
            parts.append(rows[~sighted])
        self._row_ann["exposure"] = blind
        self._ann_scores["exposure"] = extra
        rows = np.unique(np.concatenate(parts)).astype(np.int64)
        scores = self.raw("exposure", rows)
        self._exposure_known = (rows, scores)
        keep = self.allowed(rows) & (scores > 0)
        rows, scores = rows[keep], scores[keep]
        n = min(size, sources.EXPOSURE_CANDIDATES)
        best = top_k(scores, n)
        if not extra:
            chosen = np.sort(rows[best])
            return chosen, self.raw("exposure", chosen), []
        pool = [(float(scores[i]), 0, int(rows[i])) for i in best.tolist()]
        pool += [(score, 1, pid) for pid, score in extra.items()]
        pool.sort(key=lambda t: (-t[0], t[1], t[2]))
        pool = pool[:n]
        chosen = np.array(sorted(r for _, kind, r in pool if kind == 0), dtype=np.int64)
        return chosen, self.raw("exposure", chosen), [key for _, kind, key in pool if kind == 1]

    new_exposure = sources.Generation._exposure
    eligible = list(
        CustomerActivity.objects.filter(events__gte=50)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )
    picked = random.Random(0).sample(eligible, args.customers)
    by_pk = Customer.objects.in_bulk(picked)
    serving = service.serving_engine()
    ann = service.serving_ann(serving)
    engine = serving.engine
    print(
        f"served: exposure slots {engine.config.exposure_slots}, reranker "
        f"{engine.reranker is not None}, sequential {engine._sequential is not None}"
    )
    histories = [_history(serving, customer_recent_events(customer=by_pk[pk])) for pk in picked]
    arms = {"before": old_exposure, "pool layout": new_exposure}
    times: dict[str, list[float]] = {k: [] for k in arms}
    diffs = 0
    score_diff = 0.0
    with threadpool_limits(limits=1, user_api="blas"):
        for h, now in histories[:20]:
            for f in arms.values():
                sources.Generation._exposure = f
                engine.recommend(h, k=10, now=now, ann=ann)
        for i, (h, now) in enumerate(histories):
            out = {}
            for name in list(arms) if i % 2 == 0 else list(reversed(arms)):
                sources.Generation._exposure = arms[name]
                t = time.perf_counter()
                out[name] = engine.recommend(h, k=10, now=now, ann=ann)
                times[name].append(time.perf_counter() - t)
            before, after = out["before"], out["pool layout"]
            if [x.product_id for x in before] != [x.product_id for x in after]:
                diffs += 1
            else:
                gaps = [abs(x.score - y.score) for x, y in zip(before, after, strict=True)]
                score_diff = max(score_diff, *gaps)
    for name, found in times.items():
        found.sort()
        p99 = found[min(len(found) - 1, int(0.99 * len(found)))]
        median = statistics.median(found)
        print(f"{name:14s} p50 {1000 * median:6.2f} ms  p99 {1000 * p99:6.2f} ms")
    print(
        f"{len(histories)} customers: {diffs} lists differ; largest score difference {score_diff}"
    )


if __name__ == "__main__":
    main()
