"""Ranking metrics for one held-out item per customer (exact, hand-checkable formulas)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rank_of(ranked: Sequence[int] | np.ndarray, target: int) -> int | None:
    """1-based position of ``target`` in ``ranked``; None when absent."""
    hits = np.flatnonzero(np.asarray(ranked) == target)
    return int(hits[0]) + 1 if len(hits) else None


def recall_at_k(rank: int | None, k: int) -> float:
    """With one relevant item: 1 when it is in the top ``k``, else 0."""
    return 1.0 if rank is not None and rank <= k else 0.0


def ndcg_at_k(rank: int | None, k: int) -> float:
    """With one relevant item the ideal DCG is 1, so NDCG@k = 1 / log2(rank + 1) within k."""
    return 1.0 / float(np.log2(rank + 1)) if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank is not None else 0.0


def catalogue_coverage(lists: Sequence[Sequence[int]], *, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list."""
    if n_items <= 0:
        return 0.0
    seen = {int(i) for ranked in lists for i in list(ranked)[:k]}
    return len(seen) / n_items


def intra_list_diversity(vectors: np.ndarray) -> float:
    """1 - mean pairwise cosine of a list's (unit) item vectors; 0 for fewer than two."""
    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return 0.0
    sims = v @ v.T
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
