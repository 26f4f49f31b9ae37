"""The sequential model in the offline protocols, and the validation gate the fit uses.

:func:`sequential_rankers` trains the model on a protocol's training data (its early stopping
holds out each customer's last training product: the validation split, never the test items)
and returns two rankers: ``sequential`` (the model alone, full ranking with the history masked)
and ``hybrid_sequential`` (the hybrid engine with the ``sequential`` source). :func:`gate` is what
every fit asks before serving a model: does the source raise the hybrid's NDCG@10 on the
validation split?
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from recommender.ml.engine import (
    DEFAULT_SOURCE_WEIGHTS,
    AnnSearch,
    EngineConfig,
    EngineData,
    HybridEngine,
)
from recommender.ml.engine.candidates import search_for
from recommender.ml.sequential import (
    NotEnoughData,
    SequentialConfig,
    SequentialModel,
    fit_sequential,
)

from .rankers import (
    Ranker,
    _Context,
    _context,
    _history,
    _masked_top,
    _train_data,
    hybrid_ranker,
    masked_config,
    score_rankers,
)
from .splits import HeldOut, held_out_sample, leave_last_out

SOURCE = "sequential"


def with_sequential_weight(config: EngineConfig) -> EngineConfig:
    """``config`` with a positive ``sequential`` weight (the default where it has none)."""
    weights = dict(config.source_weights)
    if weights.get(SOURCE, 0.0) <= 0:
        weights[SOURCE] = DEFAULT_SOURCE_WEIGHTS[SOURCE]
    return config.replace(source_weights=weights)


def sequential_alone(ctx: _Context, model: SequentialModel) -> Ranker:
    """The model alone: every fitted product scored (offline only), the history masked."""
    data = ctx.data
    rows_of_engine = model.rows_of(data.item_ids)
    if not bool(np.all(rows_of_engine == np.arange(len(data.item_ids)))):
        raise ValueError("sequential_alone: the model must be fitted on the protocol's catalogue")

    def rank(h: HeldOut, ev: np.ndarray) -> np.ndarray:
        history = _history(data, ev)
        query = model.query(
            product_ids=history.product_ids,
            event_types=history.event_types,
            timestamps=history.timestamps,
        )
        if query is None:
            return np.empty(0, dtype=np.int64)
        return _masked_top(model.score_catalogue(query), ctx.banned(ev), ctx.depth)

    return rank


def sequential_rankers(
    ctx: _Context,
    engine: HybridEngine,
    *,
    config: SequentialConfig,
    device: str = "auto",
    threads: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, Ranker], dict[str, Any], SequentialModel | None]:
    """``{"sequential", "hybrid_sequential"}`` rankers trained on ``ctx.train``, the fit's
    report, and the model (no rankers and the reason when the data is too small)."""
    try:
        model, fit = fit_sequential(
            ctx.train,
            vectors=ctx.data.item_vectors,
            config=config,
            device=device,
            threads=threads,
            log=log,
        )
    except NotEnoughData as exc:
        return {}, {"skipped": str(exc)}, None
    with_source = engine.with_config(with_sequential_weight(engine.config)).with_sequential(model)
    rankers: dict[str, Ranker] = {
        "sequential": sequential_alone(ctx, model),
        "hybrid_sequential": hybrid_ranker(ctx, with_source),
    }
    return rankers, fit.to_dict(), model


def gate(
    data: EngineData,
    model: SequentialModel,
    *,
    config: EngineConfig,
    sample: int = 2000,
    seed: int = 0,
    min_items: int = 3,
    fit_options: Mapping[str, Any] | None = None,
    search: AnnSearch | None = None,
) -> dict[str, float]:
    """NDCG@10 of the hybrid on ``data``'s validation split (each eligible customer's last
    product held out, as in the model's early stopping), without and with the ``sequential``
    source (at ``config``'s weight, or the default one), on a seeded sample of customers.
    ``search``: the candidates' vector search (the serving index, for a large catalogue);
    without it the engine's own, built once for both arms."""
    inter = data.interactions
    split = leave_last_out(inter, min_items=min_items)
    held = held_out_sample(split.held_out, size=sample, seed=seed)
    weighted = with_sequential_weight(config)
    without = {**weighted.source_weights, SOURCE: 0.0}
    cfg = masked_config(weighted, inter)
    ctx = _context(data, split.train, cfg)
    engine = HybridEngine(cfg.replace(source_weights=without)).fit(
        _train_data(data, ctx.train), now=float(ctx.train.timestamp.max()), **(fit_options or {})
    )
    search = search_for(engine, search)
    rankers = {
        "without": hybrid_ranker(ctx, engine, search=search),
        "with": hybrid_ranker(ctx, engine.with_config(cfg).with_sequential(model), search=search),
    }
    results = {r.name: r.metrics for r in score_rankers(ctx, rankers, held, (10,))}
    return {
        "hybrid_without_ndcg@10": results["without"]["ndcg@10"],
        "hybrid_with_ndcg@10": results["with"]["ndcg@10"],
        "weight": float(weighted.source_weights[SOURCE]),
        "customers": len(held),
        "fitted_customers": len(np.unique(inter.user_idx)),
    }
