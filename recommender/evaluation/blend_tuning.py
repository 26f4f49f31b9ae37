"""Blend tuning on the validation split: a grid search of the source weights, half-life and
number of interests, scoring each customer's candidate set as the engine's blend does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.ml.engine import CandidateSet, EngineConfig, EngineData, HybridEngine

from . import metrics
from .rankers import _Context, _context, _history, _train_data, masked_config
from .splits import HeldOut, leave_last_out

TUNED_SOURCES = ("semantic", "popularity", "trending")

WEIGHT_GRID: dict[str, tuple[float, ...]] = {
    "semantic": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
    "popularity": (0.0, 0.02, 0.05, 0.1, 0.2),
    "trending": (0.0, 0.02, 0.05),
}
HALF_LIVES = (7.0, 30.0, 90.0, 365.0, 3650.0)
N_INTERESTS = (1, 3)


def tune_blend(
    data: EngineData,
    *,
    config: EngineConfig,
    min_items: int = 3,
    max_users: int = 3000,
    seed: int = 0,
    k: int = 10,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
) -> tuple[EngineConfig, list[dict[str, Any]]]:
    """Grid-search the blend on the validation split (second-to-last products). Test items never
    enter: the validation training data ends before each customer's second-to-last product.

    Collaborative keeps weight 1 (only ratios matter); semantic, popularity and trending
    weights, the history half-life and the number of interests are searched. Returns the best
    config (by NDCG@k) and the table of the best combinations.
    """
    inter = data.interactions
    test = leave_last_out(inter, min_items=min_items)
    val = leave_last_out(inter, min_items=min_items, steps=1, base=test.train)
    held = val.held_out
    if len(held) > max_users:
        rng = np.random.default_rng(seed)
        held = [held[i] for i in np.sort(rng.choice(len(held), size=max_users, replace=False))]
    base = masked_config(config, inter).replace(
        source_weights=dict.fromkeys(("collaborative", *TUNED_SOURCES), 1.0)
    )
    ctx = _context(data, val.train, base)
    now = float(ctx.train.timestamp.max())
    sources = ("collaborative", *TUNED_SOURCES)
    table: list[dict[str, Any]] = []
    engine = HybridEngine(base).fit(_train_data(data, ctx.train), now=now, **(fit_options or {}))
    with threadpool_limits(limits=1, user_api="blas"):
        table = _grid(engine, base, ctx, held, sources, k=k, log=log)
    table.sort(key=lambda row: -row[f"ndcg@{k}"])
    best = table[0]
    weights = dict(config.source_weights)
    weights.update({"collaborative": 1.0, **{s: best[s] for s in TUNED_SOURCES}})
    tuned = config.replace(
        source_weights=weights,
        half_life_days=best["half_life_days"],
        n_interests=best["n_interests"],
    )
    return tuned, table


def _grid(
    engine: HybridEngine,
    base: EngineConfig,
    ctx: _Context,
    held: Sequence[HeldOut],
    sources: Sequence[str],
    *,
    k: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """NDCG@k of every grid point, ranking each customer's candidate set (stage 1, generated
    once per half-life and number of interests) exactly as the engine's blend does (stage 2:
    the candidates of the weighted sources, each source max-normalised over them)."""
    data = ctx.data
    table: list[dict[str, Any]] = []
    grid = list(itertools.product(*(WEIGHT_GRID[s] for s in TUNED_SOURCES)))
    for half_life, n_interests in itertools.product(HALF_LIVES, N_INTERESTS):
        tuned = engine.with_config(base.replace(half_life_days=half_life, n_interests=n_interests))
        users: list[tuple[CandidateSet, int]] = []
        for h in held:
            events = ctx.user_events.get(h.user)
            if events is None or not len(events):
                continue
            cset = tuned.candidates(_history(data, events), now=h.time, all_sources=True)
            at = int(np.searchsorted(cset.rows, h.item))
            found = at < len(cset.rows) and int(cset.rows[at]) == h.item
            users.append((cset, at if found else -1))
        totals = np.zeros(len(grid), dtype=np.float64)
        rows = [(1.0, *combo) for combo in grid]  # Collaborative is the reference: weight 1.
        for cset, target in users:
            if target >= 0:
                totals += _grid_ndcg(cset, target, sources, rows, k=k)
        for combo, total in zip(grid, totals, strict=True):
            table.append(
                {
                    "half_life_days": half_life,
                    "n_interests": n_interests,
                    **dict(zip(TUNED_SOURCES, combo, strict=True)),
                    f"ndcg@{k}": round(float(total) / max(len(users), 1), 5),
                }
            )
        log(f"tuned half-life {half_life} d, {n_interests} interests on {len(users)} users")
    return table


def _grid_ndcg(
    cset: CandidateSet,
    target: int,
    sources: Sequence[str],
    grid: Sequence[Sequence[float]] | np.ndarray,
    *,
    k: int,
) -> np.ndarray:
    """One customer's NDCG@k at every grid point (one weight per source of ``sources``).
    The admitted candidates depend only on which weights are positive,
    so the normalised score matrix is built once per such pattern and re-weighted per point."""
    out = np.zeros(len(grid), dtype=np.float64)
    prepared: dict[tuple[bool, ...], tuple[np.ndarray, int] | None] = {}
    for i, combo in enumerate(grid):
        weights = np.asarray(combo, dtype=np.float64)
        pattern = tuple(bool(w > 0) for w in weights)
        if pattern not in prepared:
            on = {s: 1.0 for s, p in zip(sources, pattern, strict=True) if p}
            positions = cset.admitted(on)
            place = int(np.searchsorted(positions, target))
            if place >= len(positions) or positions[place] != target:
                prepared[pattern] = None
            else:
                columns = []
                for source in sources:
                    raw = cset.raw.get(source)
                    values = (
                        np.zeros(len(positions)) if raw is None else np.maximum(raw[positions], 0.0)
                    )
                    top = float(values.max()) if len(values) else 0.0
                    columns.append(values / top if top > 0 else values)
                prepared[pattern] = (np.stack(columns, axis=1), place)
        entry = prepared[pattern]
        if entry is None:
            continue
        matrix, place = entry
        scores = matrix @ weights
        # The engine orders ties by position: equal scores before the target rank above it.
        rank = (
            1 + int((scores > scores[place]).sum()) + int((scores[:place] == scores[place]).sum())
        )
        out[i] = metrics.ndcg_at_k(rank, k)
    return out
