"""The exposure source's fixed pool, laid out once per fitted engine for its requests.

Every request with interests scores the same ``EXPOSURE_POOL`` newest products without events
(:meth:`recommender.ml.engine.sources.Generation._exposure`): their similarity to the customer's
interests, plus what their look-alikes earn in the customer's collaborative scores. Read from the
fitted arrays each time, that is a gather of a thousand scattered vectors and a search of twenty
thousand look-alike keys (sorted first) in the customer's collaborative columns: about 2 ms of a
10 ms request at 100k products.

:class:`ExposurePool` holds the pool's vectors contiguously and its look-alikes as indices into
their sorted distinct set, so a request multiplies one small matrix and finds its own
collaborative columns (a few thousand) in that set through a table by engine row. Its size is
the pool's (1,000 vectors and 20,000 look-alike entries, about 2 MB) plus that table (4 bytes a
product: 4 MB at a million); it is built where the serving engine is loaded
(:meth:`HybridEngine.prepare`, before gunicorn forks), else on a process's first request, and
shared by every :meth:`HybridEngine.with_config` copy.
The scores are the general path's, to the last bit (``bench/exposure_pool.py`` compares them on
a shop; ``tests/recommender/ml/test_exposure_slots.py`` checks them against the definition).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# The exposure source scores exactly this many of the newest products without events (a list
# ranked at fit time), besides those the semantic search finds: bounded whatever the catalogue.
# 500 lost 4% of cold validation Recall@10 on Online Retail, where about 700 products have no
# events in that split: the search finds the most similar, not those whose look-alikes sell.
EXPOSURE_POOL = 1_000
# The exposure score of a product without events: its similarity to the customer's nearest
# interest, plus this share of the collaborative score its look-alikes earn for the customer
# (relative to the customer's best). Chosen on the cold validation splits of both datasets
# (docs/evaluation.md, "Exposure slots"): among 0, 0.25, 0.5, 1, 2 and 4, the best worst case
# of the pool's first product being the customer's next cold product.
EXPOSURE_BORROWED = 1.0

_lock = threading.Lock()


@dataclass(frozen=True)
class ExposurePool:
    """The pool's rows (ascending), their vectors, and their look-alike entries grouped by pool
    position: entry ``e`` is look-alike ``lookalikes[local[e]]`` at cosine ``cosines[e]`` (the
    fitted ``_cold`` lists' values); the entries from ``starts[j]`` up to the next start are
    pool position ``owners[j]``'s (a per-position maximum is one ``np.maximum.reduceat``:
    ``np.maximum.at`` over the entries is slower)."""

    rows: np.ndarray  # int64, ascending
    vectors: np.ndarray  # float32, (len(rows), d), contiguous
    lookalikes: np.ndarray  # int64, ascending, distinct
    local: np.ndarray  # int64, per entry
    cosines: np.ndarray  # float64, per entry
    starts: np.ndarray  # int64, ascending: each pool position's first entry
    owners: np.ndarray  # int64, ascending: the pool position of each start
    # Per engine row, its index in ``lookalikes`` or -1: a customer's collaborative columns
    # are found by one gather (4 bytes a product, like the engine's id table).
    slot: np.ndarray  # int32

    @classmethod
    def of(cls, engine: HybridEngine) -> ExposurePool:
        """The pool of ``engine``'s fit: its first ``EXPOSURE_POOL`` newest products without
        events, those with a vector."""
        newest = np.asarray(engine._new_top[:EXPOSURE_POOL], dtype=np.int64)
        rows = np.sort(newest[np.asarray(engine._has_vector[newest], dtype=bool)])
        vectors = np.ascontiguousarray(engine._vectors[rows], dtype=np.float32)
        cold = engine._cold
        if cold.nnz:
            columns, cosines, owners = cold.gather(rows, np.ones(len(rows)))
        else:
            columns, cosines, owners = (np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
        lookalikes, local = np.unique(columns, return_inverse=True)
        # ``gather`` lists the entries row by row in the order of ``rows`` (ascending), so the
        # owners come grouped and ascending.
        owner = np.searchsorted(rows, owners).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else owner
        slot = np.full(engine.n_items, -1, dtype=np.int32)
        slot[lookalikes] = np.arange(len(lookalikes), dtype=np.int32)
        return cls(
            rows=rows,
            vectors=vectors,
            lookalikes=lookalikes.astype(np.int64),
            local=local.astype(np.int64).reshape(-1),
            cosines=np.asarray(cosines, dtype=np.float64),
            starts=starts.astype(np.int64),
            owners=owner[starts],
            slot=slot,
        )

    def scores(self, centroids: np.ndarray, cols: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """Each pool row's exposure score for a customer with interest ``centroids`` and
        collaborative scores ``sums`` on the sorted, distinct ``cols``."""
        values = np.asarray(self.vectors @ centroids.T, dtype=np.float64).max(axis=1)
        top = float(sums.max()) if len(sums) else 0.0
        if top <= 0 or not len(self.local):
            return values
        at = self.slot[cols]
        hit = at >= 0
        earned = np.zeros(len(self.lookalikes), dtype=np.float64)
        earned[at[hit]] = np.maximum(sums[hit], 0.0)
        best = np.zeros(len(self.rows), dtype=np.float64)
        best[self.owners] = np.maximum(
            np.maximum.reduceat(self.cosines * earned[self.local], self.starts), 0.0
        )
        return values + EXPOSURE_BORROWED * best / top


def exposure_pool(engine: HybridEngine) -> ExposurePool:
    """``engine``'s pool, built on the first call and kept with its fitted arrays."""
    held = engine._derived.get("exposure_pool")
    if held is None:
        with _lock:
            held = engine._derived.get("exposure_pool")
            if held is None:
                held = engine._derived["exposure_pool"] = ExposurePool.of(engine)
    assert isinstance(held, ExposurePool)
    return held
