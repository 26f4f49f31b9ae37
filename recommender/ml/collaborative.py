"""Collaborative and popularity models over :class:`Interactions`. Framework-free.

Every model scores a *history vector*: a dense array over the catalogue with one weight per item
the customer touched (see :func:`recommender.ml.interactions.event_weights`). Higher is better.

- :class:`Popularity`: time-decayed event weight per item, and "trending" (recent rate vs the
  long-run rate).
- :class:`ItemKNN`: cosine item-item similarity, pruned to each item's top neighbours.
- :class:`EASE`: Steck's closed-form linear autoencoder (WWW 2019). It inverts a dense
  items x items Gram matrix: O(n^3) time and n^2 float64 memory, so it is limited to
  ``EASE.MAX_ITEMS`` (20,000 items: 3.2 GB during the fit, 1.6 GB as float32 afterwards). Larger
  catalogues use :class:`ItemKNN` (sparse) instead.
- :class:`CoOccurrence`: products bought in the same basket/session ("bought together").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


@dataclass
class ItemKNN:
    """Cosine item-item similarity over the user x item matrix, top ``neighbours`` per item."""

    neighbours: int = 100
    shrink: float = 10.0
    similarity: sp.csr_matrix | None = None

    def fit(self, matrix: sp.csr_matrix) -> ItemKNN:
        x = sp.csc_matrix(matrix, dtype=np.float64)
        gram = (x.T @ x).tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        gram = gram.tocoo()
        denom = norms[gram.row] * norms[gram.col] + self.shrink
        values = np.where(gram.row == gram.col, 0.0, gram.data / np.maximum(denom, 1e-12))
        sim = sp.csr_matrix((values, (gram.row, gram.col)), shape=gram.shape)
        sim.eliminate_zeros()
        self.similarity = _prune_rows(sim, self.neighbours).astype(np.float32)
        return self

    def score(self, history: np.ndarray) -> np.ndarray:
        if self.similarity is None:
            raise RuntimeError("ItemKNN: call fit() first")
        return np.asarray(self.similarity.T @ history, dtype=np.float64).ravel()

    def neighbours_of(self, item: int) -> np.ndarray:
        if self.similarity is None:
            raise RuntimeError("ItemKNN: call fit() first")
        return np.asarray(self.similarity.getrow(item).toarray(), dtype=np.float64).ravel()


@dataclass
class EASE:
    """Embarrassingly Shallow Autoencoder: B = I - P diagMat(1/diag(P)), P = (X'X + lambda I)^-1.

    Scores are ``history @ B``. ``MAX_ITEMS`` bounds the dense inversion (see the module notes).
    """

    MAX_ITEMS = 20_000

    l2: float = 200.0
    weights: np.ndarray | None = None

    def fit(self, matrix: sp.csr_matrix) -> EASE:
        n = matrix.shape[1]
        if n > self.MAX_ITEMS:
            raise ValueError(
                f"EASE: {n} items exceed the dense limit of {self.MAX_ITEMS}; use ItemKNN"
            )
        x = sp.csr_matrix(matrix, dtype=np.float64)
        gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        gram[np.diag_indices(n)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices(n)] = 0.0
        self.weights = weights.astype(np.float32)
        return self

    def score(self, history: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("EASE: call fit() first")
        history = np.asarray(history, dtype=np.float32)
        touched = np.flatnonzero(history)
        # A history touches few products: summing their rows reads a sliver of the matrix.
        return history[touched] @ self.weights[touched]


@dataclass
class CoOccurrence:
    """Products that share baskets: ``counts[i, j]`` baskets holding both i and j.

    ``related(i)`` ranks j by counts[i, j] / (baskets(j) + shrink) ** 0.5 / (baskets(i) + shrink)
    ** 0.5: a cosine on basket incidence with a shrink term, so a product in every basket does
    not go with everything.
    """

    shrink: float = 5.0
    counts: sp.csr_matrix | None = None
    basket_counts: np.ndarray | None = None

    def fit(self, interactions: Interactions, *, event_types: Sequence[str]) -> CoOccurrence:
        codes = [i for i, t in enumerate(interactions.event_types) if t in set(event_types)]
        mask = np.isin(interactions.event_code, codes)
        baskets = interactions.baskets()[mask]
        items = interactions.item_idx[mask]
        _, basket_idx = np.unique(baskets, return_inverse=True)
        n_baskets = int(basket_idx.max()) + 1 if len(basket_idx) else 0
        incidence = sp.csr_matrix(
            (np.ones(len(items)), (basket_idx.reshape(-1), items)),
            shape=(n_baskets, interactions.n_items),
        )
        incidence.data[:] = 1.0  # Duplicates were summed; a basket holds an item or not.
        incidence.sum_duplicates()
        incidence.data[:] = 1.0
        counts = (incidence.T @ incidence).tocsr()
        counts.setdiag(0)
        counts.eliminate_zeros()
        self.counts = counts.astype(np.float32)
        self.basket_counts = np.asarray(incidence.sum(axis=0), dtype=np.float64).ravel()
        return self

    def related(self, item: int) -> np.ndarray:
        if self.counts is None or self.basket_counts is None:
            raise RuntimeError("CoOccurrence: call fit() first")
        row = np.asarray(self.counts.getrow(item).toarray(), dtype=np.float64).ravel()
        norm = np.sqrt(
            (self.basket_counts + self.shrink) * (self.basket_counts[item] + self.shrink)
        )
        return np.divide(row, norm, out=np.zeros_like(row), where=norm > 0)

    def score(self, history: np.ndarray) -> np.ndarray:
        """Sum of ``related`` over the history items, weighted by the history."""
        if self.counts is None or self.basket_counts is None:
            raise RuntimeError("CoOccurrence: call fit() first")
        norm = np.sqrt(self.basket_counts + self.shrink)
        h = np.asarray(history, dtype=np.float64)
        h = np.divide(h, norm, out=np.zeros_like(h), where=norm > 0)
        raw = np.asarray(self.counts.T @ h, dtype=np.float64).ravel()
        return np.divide(raw, norm, out=np.zeros_like(raw), where=norm > 0)


def user_item_matrix(
    interactions: Interactions, *, behaviour_weights: Mapping[str, float]
) -> sp.csr_matrix:
    """The training matrix of EASE and item-kNN: strongest behaviour weight per (user, item)."""
    return interaction_matrix(interactions, behaviour_weights=behaviour_weights, aggregate="max")


def _prune_rows(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if start == end:
            continue
        data = matrix.data[start:end]
        idx = matrix.indices[start:end]
        if len(data) > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(data), r))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float64)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )
