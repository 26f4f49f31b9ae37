"""Maximal marginal relevance and per-category caps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mmr_order(
    scores: np.ndarray,
    vectors: np.ndarray,
    *,
    k: int,
    lam: float,
    categories: Sequence[str] | None = None,
    max_per_category: int | None = None,
) -> list[int]:
    """Pick up to ``k`` positions greedily by lam * score - (1 - lam) * max cosine to the picks.

    ``scores`` should be on a [0, 1]-ish scale (fused scores are). ``lam=1`` keeps the score
    order. Rows of ``vectors`` that are all zero (no embedding) are similar to nothing. With
    ``max_per_category``, a category that already has that many picks is skipped (empty
    categories are not capped).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"mmr_lambda: must be between 0 and 1, got {lam!r}")
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    k = min(k, n)
    chosen: list[int] = []
    counts: dict[str, int] = {}
    available = np.ones(n, dtype=bool)
    max_sim = np.zeros(n, dtype=np.float64)
    vecs = np.asarray(vectors, dtype=np.float32) if lam < 1.0 else None
    while len(chosen) < k and available.any():
        value = lam * scores - (1.0 - lam) * max_sim if vecs is not None else scores.copy()
        value[~available] = -np.inf
        pick = int(np.argmax(value))
        available[pick] = False
        if max_per_category is not None and categories is not None:
            category = categories[pick]
            if category and counts.get(category, 0) >= max_per_category:
                continue
            counts[category] = counts.get(category, 0) + 1
        chosen.append(pick)
        if vecs is not None:
            max_sim = np.maximum(max_sim, vecs @ vecs[pick])
    return chosen


def intra_list_diversity(vectors: np.ndarray) -> float:
    """1 - mean pairwise cosine of the (unit) rows; 0 for fewer than two rows."""
    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return 0.0
    sims = v @ v.T
    mean = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - mean)
