"""Customer interest vectors from product vectors (the recency-weighted mean) and multi-interest.

The interest vector: q_u = sum_t w_t * v_i(t) over the customer's events t, where v_i is the
product's L2-normalised vector and w_t = behaviour_weight(type_t) * 0.5 ** (age_t / half-life).
A product then scores cos(q_u, v_i) = q_u . v_i / |q_u|. Search events contribute the vector of
their embedded query instead of a product's. Framework-free.

Multi-interest: one average of "printer ink" and "coffee" points at neither, so
:func:`multi_interest` clusters the weighted event vectors into up to N centroids (a weighted
spherical k-means seeded by farthest-point selection) and a product scores its best cosine over
the centroids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .interactions import decay


@dataclass(frozen=True)
class Interest:
    """One interest: a unit vector and the share of the customer's weight behind it."""

    vector: np.ndarray
    weight: float
    members: tuple[int, ...]  # Rows of the input (events) that formed it.


def event_vector_weights(
    *,
    event_types: Sequence[str],
    timestamps: Sequence[float] | np.ndarray,
    behaviour_weights: Mapping[str, float],
    half_life_days: float,
    now: float,
) -> np.ndarray:
    """w_t = behaviour weight x time decay, one per event."""
    behaviour = np.array([float(behaviour_weights.get(t, 0.0)) for t in event_types])
    return behaviour * decay(
        np.asarray(timestamps, dtype=np.float64), now=now, half_life_days=half_life_days
    )


def interest_vector(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """q_u / |q_u| for the rows of ``vectors`` weighted by ``weights``; None when it is zero."""
    if len(vectors) == 0:
        return None
    q = np.asarray(weights, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if norm <= 1e-12:
        return None
    return (q / norm).astype(np.float32)


def multi_interest(
    vectors: np.ndarray,
    weights: np.ndarray,
    *,
    n_interests: int,
    iterations: int = 5,
    split_below: float = 0.5,
) -> list[Interest]:
    """Cluster the weighted event vectors into at most ``n_interests`` interests.

    Seeds: the heaviest vector, then repeatedly the vector farthest from every seed so far
    (distance weighted by its weight), while its best cosine to a seed is below
    ``split_below`` and more seeds are allowed: related products stay one interest. Then a few
    weighted spherical k-means steps. Interests are returned heaviest first; their weights sum
    to 1.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    keep = (weights > 0) & (_row_norms(vectors) > 0)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return []
    # Usually every event counts: no copy then.
    v, w = (vectors, weights) if len(rows) == len(vectors) else (vectors[rows], weights[rows])
    n = min(max(n_interests, 1), len(rows))
    if n == 1:
        # One centroid takes every event: the k-means below would end where it starts.
        vec = interest_vector(v, w)
        every = tuple(int(r) for r in rows)
        return [] if vec is None else [Interest(vector=vec, weight=1.0, members=every)]
    seeds = [int(np.argmax(w))]
    while len(seeds) < n:
        best_sim = (v @ v[seeds].T).max(axis=1)
        distance = (1.0 - best_sim) * w
        distance[seeds] = -1.0
        candidate = int(np.argmax(distance))
        if distance[candidate] <= 1e-9 or best_sim[candidate] > 1.0 - 1e-6:
            break  # Everything left duplicates a seed.
        if best_sim[candidate] >= split_below:
            break  # The farthest event is close to a seed already: no separate interest.
        seeds.append(candidate)
    centroids = v[seeds].copy()
    assign = np.zeros(len(v), dtype=np.int64)
    weighted = v * w[:, None]
    for _ in range(iterations):
        assign = np.argmax(v @ centroids.T, axis=1)
        # Weighted sums per centroid: a sum over axis 0 adds the rows in order, like np.add.at
        # and bincount did (the same floats), at a third of bincount's cost.
        new = np.zeros_like(centroids)
        for c in np.unique(assign).tolist():
            new[c] = weighted[assign == c].sum(axis=0)
        norms = _row_norms(new)[:, None]
        empty = norms[:, 0] <= 1e-12
        new[~empty] /= norms[~empty]
        new[empty] = centroids[empty]
        if _close(new, centroids):
            break
        centroids = new
    assign = np.argmax(v @ centroids.T, axis=1)
    total = float(w.sum())
    interests = []
    for c in range(len(centroids)):
        members = np.flatnonzero(assign == c)
        if len(members) == 0:
            continue
        vec = interest_vector(v[members], w[members])
        if vec is None:
            continue
        interests.append(
            Interest(
                vector=vec,
                weight=float(w[members].sum()) / total,
                members=tuple(rows[members].tolist()),
            )
        )
    interests.sort(key=lambda i: -i.weight)
    return interests


def _row_norms(x: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(x, axis=1)`` of a real matrix: the same operations (so the same floats)
    without the general function's dispatch, which cost more than the sums on a history."""
    return np.sqrt(np.add.reduce(x * x, axis=1))


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """``np.allclose(a, b)`` (rtol 1e-5, atol 1e-8) for finite arrays, without its checks for
    infinities and NaN (unit vectors have none)."""
    return bool(np.all(np.abs(a - b) <= 1e-8 + 1e-5 * np.abs(b)))


def interest_scores(interests: Sequence[Interest], item_vectors: np.ndarray) -> np.ndarray:
    """Each item's best cosine over the interests (0 for items without a vector)."""
    if not interests:
        return np.zeros(len(item_vectors), dtype=np.float64)
    centroids = np.stack([i.vector for i in interests]).astype(np.float32)
    return np.asarray(item_vectors @ centroids.T, dtype=np.float64).max(axis=1)
