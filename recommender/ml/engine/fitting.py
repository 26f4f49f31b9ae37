"""Fitting: every array and bounded list a :class:`HybridEngine` serves from, computed once.

Owns :func:`fit_engine` (popularity and trend, the collaborative neighbour lists (pruned EASE or
item-kNN), co-occurrence, the cold look-alikes, and the lists ranked at fit time that stage 1
reads instead of the catalogue) and the sizes of those structures. Writes the engine's arrays;
serving never calls it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from recommender.ml import neighbours as nb
from recommender.ml.arrays import StringTable
from recommender.ml.collaborative import Popularity, top_k, user_item_matrix
from recommender.ml.interactions import Interactions

from . import config
from .data import AnnSearch, EngineData

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# Products with events a product without any is compared with (cold look-alikes).
COLD_LOOKALIKES = 20
# Neighbours kept per product of the EASE model (docs/scale.md: 200 cost at most 0.7% of NDCG@10
# against the dense model on both datasets' splits) and of the co-occurrence lists.
EASE_NEIGHBOURS = 200
COOCCURRENCE_NEIGHBOURS = 200
COOCCURRENCE_SHRINK = 5.0
# Lengths of the lists ranked at fit time: the whole catalogue's best and each category's best
# by popularity and by trend, and the newest products without events.
TOP_LIST = 10_000
TOP_PER_CATEGORY = 500
NEW_ARRIVALS_LIST = 5_000
# Scores computed at once by the exact cold look-alike search (float32: 64 MB).
_SCORE_BLOCK = 1 << 24


def fit_engine(
    engine: HybridEngine,
    data: EngineData,
    *,
    now: float,
    ease_max_items: int,
    threads: int,
    ann: AnnSearch | None,
    progress: Callable[[float], None] | None,
    ann_done: Callable[[], None] | None = None,
) -> None:
    """Fit every model of ``engine`` on ``data`` as of ``now`` (see :meth:`HybridEngine.fit`).

    The cold look-alikes, the one part that searches ``ann``, come first; ``ann_done`` is then
    called, so a caller can free the index before the collaborative models' peak."""
    cfg = engine.config
    report = progress or (lambda _: None)
    n = len(data.item_ids)
    _catalogue(engine, data)
    inter = data.interactions
    engine._has_events = np.bincount(inter.item_idx, minlength=n) > 0
    engine.fit_seconds = {}
    clock = _PartClock(engine.fit_seconds)
    engine._cold = _cold_lookalikes(engine, ann)
    clock.lap("cold_lookalikes")
    if ann_done is not None:
        ann_done()
    report(0.05)
    popularity = Popularity(
        half_life_days=cfg.popularity_half_life_days, window_days=cfg.trending_window_days
    ).fit(inter, behaviour_weights=cfg.behaviour_weights, now=now)
    assert popularity.scores is not None
    assert popularity.trend is not None
    engine._pop = np.asarray(popularity.scores, dtype=np.float64)
    engine._trend = np.asarray(popularity.trend, dtype=np.float64)
    _rank_lists(engine)
    clock.lap("popularity")
    report(0.1)
    matrix = user_item_matrix(inter, behaviour_weights=cfg.behaviour_weights)
    engine._knn = nb.item_knn(matrix, k=cfg.knn_neighbours, threads=threads)
    clock.lap("item_knn")
    report(0.4)
    if 0 < n <= ease_max_items:
        engine._ease = nb.ease(matrix, l2=cfg.ease_lambda, k=EASE_NEIGHBOURS)
        engine.collaborative_model = "ease"
        engine.collaborative_note = f"EASE on {n} products, {EASE_NEIGHBOURS} weights a product"
    else:
        engine._ease = None
        engine.collaborative_model = "item_knn"
        engine.collaborative_note = (
            f"item-kNN ({cfg.knn_neighbours} neighbours): {n} products are more than "
            f"the {ease_max_items} dense EASE is fitted for (time and memory budget)"
        )
    del matrix
    clock.lap("ease" if engine._ease is not None else "")
    report(0.75)
    engine._cooc = nb.cooccurrence(
        _basket_incidence(inter, event_types=cfg.cooccurrence_event_types),
        k=COOCCURRENCE_NEIGHBOURS,
        shrink=COOCCURRENCE_SHRINK,
        threads=threads,
    )
    clock.lap("cooccurrence")
    engine.fitted_at = float(now)
    engine._own_ann = None
    report(1.0)


def _catalogue(engine: HybridEngine, data: EngineData) -> None:
    """The per-product arrays read from the catalogue: ids, vectors, flags, titles, categories."""
    engine._ids = np.asarray(data.item_ids, dtype=np.int64)
    engine._vectors = np.ascontiguousarray(data.item_vectors, dtype=np.float32)
    engine._has_vector = np.asarray(data.has_vector, dtype=bool)
    engine._active = np.asarray(data.item_active, dtype=bool)
    engine._created = np.asarray(data.item_created_at, dtype=np.float64)
    engine._titles = StringTable.from_strings(list(data.item_titles))
    names, codes = np.unique(np.asarray(list(data.item_categories), dtype=object).astype(str),
                             return_inverse=True)  # fmt: skip
    engine._category_names = [str(x) for x in names]
    engine._category = codes.astype(np.int32).reshape(-1)
    engine._category_rows = np.argsort(engine._category, kind="stable").astype(np.int32)
    engine._category_offsets = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(np.bincount(engine._category, minlength=len(names)),
              out=engine._category_offsets[1:])  # fmt: skip


class _PartClock:
    """Writes the seconds since the previous lap under each part's name."""

    def __init__(self, parts: dict[str, float]) -> None:
        self.parts = parts
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Close the current part; an empty name drops it (a part that did not run)."""
        now = time.perf_counter()
        if name:
            self.parts[name] = round(now - self.last, 3)
        self.last = now


def _rank_lists(engine: HybridEngine) -> None:
    """The lists stage 1 reads popularity, trend and new arrivals from."""
    n_categories = len(engine._category_names)
    engine._pop_max = float(engine._pop.max()) if len(engine._pop) else 0.0
    engine._pop_top = _best_rows(engine._pop, TOP_LIST)
    engine._trend_top = _best_rows(engine._trend, TOP_LIST)
    engine._cat_pop = _best_rows_per_group(engine._pop, engine._category, TOP_PER_CATEGORY,
                                           n_categories)  # fmt: skip
    engine._cat_trend = _best_rows_per_group(engine._trend, engine._category, TOP_PER_CATEGORY,
                                             n_categories)  # fmt: skip
    fresh = np.flatnonzero(~engine._has_events)
    newest = fresh[np.lexsort((fresh, -engine._created[fresh]))][:NEW_ARRIVALS_LIST]
    engine._new_top = newest.astype(np.int32)


def _cold_lookalikes(engine: HybridEngine, ann: AnnSearch | None) -> nb.Neighbours:
    """Rows: products with a vector and no events; entries: their ``COLD_LOOKALIKES``
    nearest products with events and a vector, valued by the cosine (negatives as 0).

    Exactly (blocks of cosines) when cold x warm products is at most ``EXACT_SEARCH_MAX``
    squared, else through ``ann`` (asking three times as many and keeping those with
    events); without ``ann`` a large catalogue has none (``cold_collaborative`` then has
    nothing to borrow).
    """
    n = len(engine._ids)
    cold = np.flatnonzero(engine._has_vector & ~engine._has_events)
    warm = np.flatnonzero(engine._has_vector & engine._has_events)
    m = min(COLD_LOOKALIKES, len(warm))
    if not len(cold) or m == 0:
        return nb.Neighbours.empty(n)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    values: list[np.ndarray] = []
    if len(cold) * len(warm) <= config.EXACT_SEARCH_MAX**2:
        warm_vectors = engine._vectors[warm]
        step = max(16, _SCORE_BLOCK // len(warm))  # At most 64 MB of cosines at a time.
        for start in range(0, len(cold), step):
            block = cold[start : start + step]
            sims = engine._vectors[block] @ warm_vectors.T
            top = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            rows.append(np.repeat(block, m))
            cols.append(warm[top].ravel())
            values.append(np.maximum(np.take_along_axis(sims, top, axis=1), 0.0).ravel())
    elif ann is not None:
        for row in cold:
            found = [
                (engine._row_of(pid), score) for pid, score in ann(engine._vectors[row], 3 * m + 1)
            ]
            kept = [(r, s) for r, s in found if r >= 0 and r != row and engine._has_events[r]]
            kept = kept[:m]
            rows.append(np.full(len(kept), row))
            cols.append(np.array([r for r, _ in kept], dtype=np.int64))
            values.append(np.maximum(np.array([s for _, s in kept], dtype=np.float64), 0))
    else:
        return nb.Neighbours.empty(n)
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )
    return nb.Neighbours.from_csr(matrix)


def _best_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` highest positive scores, best first (ties by row)."""
    masked = np.where(scores > 0, scores, -np.inf)
    return top_k(masked, n).astype(np.int32)


def _best_rows_per_group(
    scores: np.ndarray, groups: np.ndarray, n: int, n_groups: int
) -> nb.Neighbours:
    """Each group's ``n`` best rows with a positive score, best first, as CSR rows per group
    (the values are the scores)."""
    rows = np.flatnonzero(scores > 0)
    order = rows[np.lexsort((rows, -scores[rows], groups[rows]))]
    group_of = groups[order]
    starts = np.searchsorted(group_of, np.arange(n_groups))
    rank = np.arange(len(order)) - starts[group_of]
    keep = order[rank < n]
    counts = np.bincount(groups[keep], minlength=n_groups)
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return nb.Neighbours(
        indptr=indptr,
        indices=keep.astype(np.int32),
        data=scores[keep].astype(np.float32),
    )


def _basket_incidence(inter: Interactions, *, event_types: Sequence[str]) -> sp.csr_matrix:
    """Baskets x items (1 where a basket holds the item) over events of ``event_types``."""
    codes = [i for i, t in enumerate(inter.event_types) if t in set(event_types)]
    mask = np.isin(inter.event_code, codes)
    baskets = inter.baskets()[mask]
    items = inter.item_idx[mask]
    _, basket_idx = np.unique(baskets, return_inverse=True)
    n_baskets = int(basket_idx.max()) + 1 if len(basket_idx) else 0
    return sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (basket_idx.reshape(-1), items)),
        shape=(n_baskets, inter.n_items),
    )
