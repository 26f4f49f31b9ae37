"""Popularity over :class:`Interactions`, the training matrix of the collaborative models, and
``top_k``. Framework-free.

The collaborative models themselves are item-to-item neighbour lists
(:mod:`recommender.ml.neighbours`): EASE pruned where the dense model fits the memory budget,
item-kNN above it, and co-occurrence ("bought together").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .interactions import DAY_SECONDS, Interactions, event_weights, interaction_matrix


def top_k(scores: np.ndarray, k: int, *, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties broken by lower index)."""
    scores = np.asarray(scores, dtype=np.float64)
    if exclude is not None and len(exclude):
        scores = scores.copy()
        scores[exclude] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


@dataclass
class Popularity:
    """Time-decayed popularity and trending, optionally restricted to a category.

    ``scores[i]`` is the sum over item i's events of behaviour weight x 0.5 ** (age/half-life).
    ``trend[i]`` compares the last ``window_days`` with the long run: (recent + 1) /
    (expected_recent + 1) x log(1 + recent), where expected_recent is the item's long-run rate
    times the window. The log factor keeps one lucky event from topping the list.
    """

    half_life_days: float = 30.0
    window_days: float = 7.0
    scores: np.ndarray | None = None
    trend: np.ndarray | None = None

    def fit(
        self,
        interactions: Interactions,
        *,
        behaviour_weights: Mapping[str, float],
        now: float,
    ) -> Popularity:
        n = interactions.n_items
        weights = event_weights(
            interactions,
            behaviour_weights=behaviour_weights,
            half_life_days=self.half_life_days,
            now=now,
        )
        self.scores = np.bincount(interactions.item_idx, weights=weights, minlength=n)
        plain = event_weights(interactions, behaviour_weights=behaviour_weights)
        start = now - self.window_days * DAY_SECONDS
        recent_mask = (interactions.timestamp > start) & (interactions.timestamp <= now)
        recent = np.bincount(
            interactions.item_idx[recent_mask], weights=plain[recent_mask], minlength=n
        )
        older_mask = interactions.timestamp <= start
        older = np.bincount(
            interactions.item_idx[older_mask], weights=plain[older_mask], minlength=n
        )
        if older_mask.any():
            span_days = max(
                (start - float(interactions.timestamp[older_mask].min())) / DAY_SECONDS,
                self.window_days,
            )
        else:
            span_days = self.window_days
        expected = older * (self.window_days / span_days)
        self.trend = (recent + 1.0) / (expected + 1.0) * np.log1p(recent)
        return self

    def top(
        self, k: int, *, trending: bool = False, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        scores = self.trend if trending else self.scores
        if scores is None:
            raise RuntimeError("Popularity: call fit() first")
        masked = scores.astype(np.float64).copy()
        if allowed is not None:
            masked[~allowed] = -np.inf
        masked[masked <= 0] = -np.inf
        return top_k(masked, k)


def user_item_matrix(
    interactions: Interactions, *, behaviour_weights: Mapping[str, float]
) -> sp.csr_matrix:
    """The training matrix of EASE and item-kNN: strongest behaviour weight per (user, item)."""
    return interaction_matrix(interactions, behaviour_weights=behaviour_weights, aggregate="max")
