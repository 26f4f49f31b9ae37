"""Which collaborative model, measured: the candidates for catalogues above the EASE limit, and
what pruning EASE to its largest weights costs (docs/scale.md, "Choosing the collaborative
model").

On the imported data (``DATABASE_URL``; embeddings are not needed), with the project's own
leave-last-out protocol (recommender.evaluation.protocols):

- **validation** (second-to-last products; the split defaults are chosen on): NDCG@10 and
  Recall@10 of EASE (several lambda), item-kNN (cosine, the engine's all_pairs_knn lists),
  RP3beta (Paudel et al. 2017; alpha, beta grid) and implicit's ALS (factors, alpha,
  regularisation grid), each ranking every product;
- **pruning**: the hybrid engine with EASE pruned to k weights a row (what serves) against the
  dense EASE scores, on the validation and the test split.

    DATABASE_URL=postgres://.../recsite_e_retail .venv/bin/python bench/collaborative.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--als", action="store_true", help="Include the ALS grid (slow).")
    parser.add_argument("--prune", default="50,100,200,500", help="EASE weights kept a row.")
    args = parser.parse_args()

    import django

    django.setup()
    from implicit.als import AlternatingLeastSquares

    from recommender.evaluation.rankers import (
        _context,
        _masked_top,
        _train_data,
        hybrid_ranker,
        masked_config,
        score_rankers,
    )
    from recommender.evaluation.splits import HeldOut, leave_last_out
    from recommender.ml import neighbours as nb
    from recommender.ml.collaborative import user_item_matrix
    from recommender.ml.engine import EngineConfig, HybridEngine
    from recommender.services.evaluation import engine_data_load

    data = engine_data_load(embed_missing=False)
    inter = data.interactions
    n = len(data.item_ids)
    test = leave_last_out(inter, min_items=3)
    validation = leave_last_out(inter, min_items=3, steps=1, base=test.train)
    print(f"{n} products, {len(inter)} events, {len(validation.held_out)} validation customers")

    cfg = masked_config(EngineConfig(), inter)
    ctx = _context(data, validation.train, cfg)
    matrix = user_item_matrix(ctx.train, behaviour_weights=cfg.behaviour_weights)

    def history(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights = np.array(
            [cfg.behaviour_weights.get(inter.event_types[c], 0.0) for c in inter.event_code[events]]
        )
        rows, inverse = np.unique(inter.item_idx[events], return_inverse=True)
        strongest = np.zeros(len(rows))
        np.maximum.at(strongest, inverse.reshape(-1), weights)
        return rows, strongest

    Ranker = Callable[[HeldOut, np.ndarray], np.ndarray]
    rankers: dict[str, Ranker] = {}

    def dense_ranker(weights: np.ndarray) -> Ranker:
        def rank(h: HeldOut, events: np.ndarray) -> np.ndarray:
            rows, strength = history(events)
            return _masked_top(strength.astype(np.float32) @ weights[rows], ctx.banned(events), 100)

        return rank

    def sparse_ranker(lists: nb.Neighbours) -> Ranker:
        def rank(h: HeldOut, events: np.ndarray) -> np.ndarray:
            rows, strength = history(events)
            cols, sums = lists.accumulate(rows, strength)
            scores = np.zeros(n)
            scores[cols] = sums
            return _masked_top(scores, ctx.banned(events), 100)

        return rank

    for l2 in (50.0, 200.0, 500.0):
        rankers[f"EASE lambda={l2:g}"] = dense_ranker(nb.ease_weights(matrix, l2=l2))
    rankers["item-kNN cosine, 100"] = sparse_ranker(nb.item_knn(matrix, k=100))
    x = sp.csr_matrix(matrix, dtype=np.float64)
    user_degree = np.asarray(x.sum(axis=1)).ravel()
    item_degree = np.asarray(x.sum(axis=0)).ravel()
    for alpha in (0.5, 1.0):
        xa = x.copy()
        xa.data **= alpha
        gram = (xa.T @ sp.diags(1 / np.maximum(user_degree, 1e-9) ** alpha) @ xa).tocsr()
        for beta in (0.0, 0.3, 0.5, 0.7):
            left = sp.diags(1 / np.maximum(item_degree, 1e-9) ** alpha)
            right = sp.diags(1 / np.maximum(item_degree, 1e-9) ** beta)
            weights = (left @ gram @ right).toarray().astype(np.float32)
            np.fill_diagonal(weights, 0.0)
            rankers[f"RP3beta alpha={alpha:g} beta={beta:g}"] = sparse_ranker(
                nb.prune_dense(weights, k=100)
            )
    if args.als:
        for factors in (128, 256):
            for confidence in (5.0, 40.0):
                for regularisation in (0.1, 10.0):
                    model = AlternatingLeastSquares(
                        factors=factors,
                        regularization=regularisation,
                        alpha=confidence,
                        iterations=15,
                        random_state=0,
                    )
                    model.fit(sp.csr_matrix(matrix, dtype=np.float32), show_progress=False)

                    def als(h: HeldOut, events: np.ndarray, model=model) -> np.ndarray:
                        rows, strength = history(events)
                        row = sp.csr_matrix(
                            (strength.astype(np.float32), (np.zeros(len(rows)), rows)),
                            shape=(1, n),
                        )
                        user = np.asarray(model.recalculate_user(0, row)).ravel()
                        scores = model.item_factors @ user
                        return _masked_top(scores, ctx.banned(events), 100)

                    name = f"ALS factors={factors} alpha={confidence:g} reg={regularisation:g}"
                    rankers[name] = als
    print("\nValidation split, every product ranked (NDCG@10, Recall@10):")
    for result in score_rankers(ctx, rankers, validation.held_out, (10,)):
        m = result.metrics
        print(f"  {result.name:38s} {m['ndcg@10']:.4f}  {m['recall@10']:.4f}  {result.seconds} s")

    print("\nThe hybrid engine with EASE pruned to k weights a row (NDCG@10):")
    ks = [int(k) for k in args.prune.split(",")]
    for split_name, split in (("validation", validation), ("test", test)):
        split_ctx = _context(data, split.train, cfg)
        now = float(split_ctx.train.timestamp.max())
        started = time.perf_counter()
        engine = HybridEngine(cfg).fit(_train_data(data, split_ctx.train), now=now)
        dense = nb.ease_weights(
            user_item_matrix(split_ctx.train, behaviour_weights=cfg.behaviour_weights),
            l2=cfg.ease_lambda,
        )
        fitted = time.perf_counter() - started
        row = []
        for k in ks:
            engine._ease = nb.prune_dense(dense, k=k)
            [result] = score_rankers(split_ctx, {"h": hybrid_ranker(split_ctx, engine)},
                                     split.held_out, (10,))  # fmt: skip
            row.append(f"k={k}: {result.metrics['ndcg@10']:.4f}")
        # k = n - 1 keeps every weight: the dense model's scores.
        engine._ease = nb.prune_dense(dense, k=n - 1)
        [result] = score_rankers(split_ctx, {"h": hybrid_ranker(split_ctx, engine)},
                                 split.held_out, (10,))  # fmt: skip
        row.append(f"dense: {result.metrics['ndcg@10']:.4f}")
        print(f"  {split_name:10s} " + "  ".join(row) + f"  (fits {fitted:.0f} s)")


if __name__ == "__main__":
    main()
