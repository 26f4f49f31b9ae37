"""The baselines' own settings chosen on validation, as carefully as the hybrid's: EASE's λ and
item-kNN's neighbour count, each the best of a grid by NDCG@k on the validation split (the
second-to-last products, training data ending before them). A baseline with a fixed, untuned
parameter would flatter the hybrid. Test items are never seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from recommender.ml.engine import EngineConfig, EngineData

from .rankers import (
    EASE_BASELINE_MAX_ITEMS,
    Ranker,
    _Context,
    _context,
    baseline_rankers,
    score_rankers,
)
from .splits import leave_last_out

EASE_LAMBDAS = (1.0, 10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 3000.0)
KNN_SIZES = (10, 25, 50, 100, 200, 400)


def tune_baselines(
    data: EngineData,
    *,
    config: EngineConfig,
    base: np.ndarray,
    min_items: int = 3,
    max_users: int = 3000,
    seed: int = 0,
    k: int = 10,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[EngineConfig, list[dict[str, Any]]]:
    """``config`` with ``ease_lambda`` and ``knn_neighbours`` chosen on the validation split
    inside the training mask ``base``, and one row per setting tried."""
    inter = data.interactions
    val = leave_last_out(inter, min_items=min_items, steps=1, base=base)
    held = val.held_out
    if not held:
        return config, []
    if len(held) > max_users:
        rng = np.random.default_rng(seed)
        held = [held[i] for i in np.sort(rng.choice(len(held), size=max_users, replace=False))]
    rows: list[dict[str, Any]] = []
    grids: list[tuple[str, str, tuple[float, ...]]] = [("item_knn", "knn_neighbours", KNN_SIZES)]
    if len(data.item_ids) <= EASE_BASELINE_MAX_ITEMS:
        grids.append(("ease", "ease_lambda", EASE_LAMBDAS))
    chosen: dict[str, Any] = {}
    validation = _context(data, val.train, config)  # Split once; each setting swaps the config.
    for model, name, values in grids:
        best_value, best_ndcg = getattr(config, name), -1.0
        for value in values:
            setting = int(value) if name == "knn_neighbours" else float(value)
            ctx = replace(validation, config=config.replace(**{name: setting}))
            [result] = score_rankers(ctx, baseline_rankers(ctx, names=(model,)), held, (k,))
            ndcg = float(result.metrics[f"ndcg@{k}"])
            rows.append({"model": model, name: setting, f"ndcg@{k}": round(ndcg, 5)})
            if ndcg > best_ndcg:
                best_value, best_ndcg = setting, ndcg
        chosen[name] = best_value
        log(f"{model}: {name} = {best_value} on validation (NDCG@{k} {best_ndcg:.4f})")
    return config.replace(**chosen), rows


def baselines_on_validation(
    data: EngineData,
    ctx: _Context,
    *,
    train_mask: np.ndarray,
    min_items: int = 3,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, Ranker], dict[str, Any]]:
    """The baseline rankers of ``ctx`` (whose training data is ``train_mask``) with their
    settings chosen on the validation split inside it, and the report's note of the choice:
    what ``evaluate`` and the sampled evaluation runs both score."""
    tuned, rows = tune_baselines(
        data, config=ctx.config, base=train_mask, min_items=min_items, seed=seed, log=log
    )
    note = {
        "ease_lambda": tuned.ease_lambda,
        "knn_neighbours": tuned.knn_neighbours,
        "validation": rows,
    }
    return baseline_rankers(replace(ctx, config=tuned)), note
