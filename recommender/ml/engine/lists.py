"""The lists that are not a customer's: similar products, bought together, trending, popular.

Owns :func:`similar`, :func:`bought_together`, :func:`trending` and :func:`popular` (each a few
sparse parts read from the neighbour lists, the ``ann`` search or the lists ranked at fit time) and
:func:`simple_list`, which normalises and sums such parts into ranked items with their reasons.
No customer history, no candidate set, no rules: those are :mod:`.candidates` and
:mod:`.scoring`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np

from recommender.ml import neighbours as nb
from recommender.ml.collaborative import top_k
from recommender.ranking import reasons as reason_text
from recommender.ranking.fusion import blend
from recommender.ranking.types import RankedItem

from .candidates import search_for
from .data import AnnSearch

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# Over-fetch of the similar-products search: the product itself and inactive ones drop out.
_SIMILAR_OVERFETCH = 16

SimilarMode = Literal["semantic", "behavioural", "hybrid"]


def similar(
    engine: HybridEngine, product_id: int, *, k: int, mode: SimilarMode, ann: AnnSearch | None
) -> list[RankedItem]:
    """Products like ``product_id`` (see :meth:`HybridEngine.similar`)."""
    engine._check_fitted()
    if mode not in ("semantic", "behavioural", "hybrid"):
        raise ValueError(f"mode: expected semantic, behavioural or hybrid, got {mode!r}")
    idx = engine.index_of(product_id)
    title = engine._titles[idx]
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if mode in ("semantic", "hybrid") and engine._has_vector[idx]:
        found = search_for(engine, ann)(engine._vectors[idx], k + _SIMILAR_OVERFETCH)
        rows = engine._rows_of([pid for pid, _ in found])
        rows = np.unique(np.concatenate([rows[rows >= 0], [idx]]))
        rows = rows[engine._has_vector[rows]]
        # Exact cosines; the product itself stays in for the normalisation (as its best).
        sims = np.asarray(engine._vectors[rows] @ engine._vectors[idx], dtype=np.float64)
        parts["semantic"] = (rows, sims)
    if mode in ("behavioural", "hybrid"):
        parts["collaborative"] = _summed_rows((engine._knn, idx), (engine._cooc, idx))
    return simple_list(
        engine,
        parts,
        blocked=idx,
        k=k,
        reason_for={
            "semantic": lambda _: reason_text.similar_product(title=title),
            "collaborative": lambda _: reason_text.bought_together(title=title),
        },
    )


def bought_together(engine: HybridEngine, product_id: int, *, k: int) -> list[RankedItem]:
    """Products that share baskets with ``product_id`` (co-occurrence), best first."""
    engine._check_fitted()
    idx = engine.index_of(product_id)
    title = engine._titles[idx]
    cols, values = engine._cooc.row(idx)
    return simple_list(
        engine,
        {"session": (cols.astype(np.int64), values.astype(np.float64))},
        blocked=idx,
        k=k,
        reason_for={"session": lambda _: reason_text.bought_together(title=title)},
    )


def trending(engine: HybridEngine, *, k: int, category: str | None) -> list[RankedItem]:
    """Trending products as of the fit, then popular ones (see :meth:`HybridEngine.trending`)."""
    return _fit_time_ranked(engine, k=k, category=category, with_trending=True)


def popular(engine: HybridEngine, *, k: int, category: str | None) -> list[RankedItem]:
    """The most popular products as of the fit (see :meth:`HybridEngine.popular`)."""
    return _fit_time_ranked(engine, k=k, category=category, with_trending=False)


def _fit_time_ranked(
    engine: HybridEngine, *, k: int, category: str | None, with_trending: bool
) -> list[RankedItem]:
    """The lists ranked at fit time (overall or of one category): trending products first when
    ``with_trending``, popular ones behind them (a quiet week has few trending ones)."""
    engine._check_fitted()
    code = engine._category_code(category)
    if code == -2:
        return []
    if code >= 0:
        trend_rows = engine._cat_trend.row(code)[0].astype(np.int64)
        pop_rows = engine._cat_pop.row(code)[0].astype(np.int64)
    else:
        trend_rows = engine._trend_top.astype(np.int64)
        pop_rows = engine._pop_top.astype(np.int64)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if with_trending:
        trend = engine._trend[trend_rows]
        parts["trending"] = (trend_rows, np.where(trend > 0, trend + 1.0, 0.0))
    top = engine._pop_max if engine._pop_max > 0 else 1.0
    parts["popularity"] = (pop_rows, engine._pop[pop_rows] / top)
    return simple_list(
        engine,
        parts,
        blocked=-1,
        k=k,
        reason_for={
            "trending": lambda i: reason_text.popular_in(
                category=engine.category_of(i), trending=True
            ),
            "popularity": lambda i: reason_text.popular_in(
                category=engine.category_of(i), trending=False
            ),
        },
        normalise_parts=False,
    )


def simple_list(
    engine: HybridEngine,
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    blocked: int,
    k: int,
    reason_for: Mapping[str, Callable[[int], str]],
    normalise_parts: bool = True,
) -> list[RankedItem]:
    """A product list from a few sparse parts ``{source: (rows, scores)}``: normalised
    (by each part's maximum) and summed over the union of their rows, inactive products
    and ``blocked`` left out, best ``k`` first (ties by row)."""
    if k < 1:
        raise ValueError(f"k: expected an integer >= 1, got {k!r}")
    parts = {s: p for s, p in parts.items() if len(p[0])}
    if not parts:
        return []
    rows = np.unique(np.concatenate([p[0] for p in parts.values()])).astype(np.int64)
    dense = {s: nb.lookup(*_sorted_part(*p), rows) for s, p in parts.items()}
    if normalise_parts:
        total, components = blend(dense, dict.fromkeys(dense, 1.0), size=len(rows))
    else:
        components = {s: np.maximum(v, 0.0) for s, v in dense.items()}
        total = sum(components.values(), np.zeros(len(rows)))
    allowed = np.asarray(engine._active[rows], dtype=bool) & (rows != blocked)
    masked = np.where(allowed & (total > 0), total, -np.inf)
    items = []
    for position in top_k(masked, k):
        idx = int(rows[position])
        comps = {s: float(c[position]) for s, c in components.items() if c[position] > 0}
        sources = tuple(sorted(comps, key=lambda s: -comps[s]))
        items.append(
            RankedItem(
                index=idx,
                product_id=int(engine._ids[idx]),
                score=float(total[position]),
                sources=sources,
                components=comps,
                reasons=tuple(reason_for[s](idx) for s in sources),
            )
        )
    return items


def _summed_rows(*parts: tuple[nb.Neighbours, int]) -> tuple[np.ndarray, np.ndarray]:
    """The sum of some neighbour rows as ``(sorted cols, values)``."""
    cols_list, values_list = [], []
    for neighbours, row in parts:
        cols, values = neighbours.row(row)
        cols_list.append(cols.astype(np.int64))
        values_list.append(values.astype(np.float64))
    n_columns = max(neighbours.n for neighbours, _ in parts)
    return nb.sum_by_column(np.concatenate(cols_list), np.concatenate(values_list),
                            n_columns=n_columns)  # fmt: skip


def _sorted_part(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    return np.asarray(rows, dtype=np.int64)[order], np.asarray(scores, dtype=np.float64)[order]
