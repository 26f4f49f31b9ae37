"""A learned reranker over the fused candidates (learning to rank), used in place of the linear
blend's order only where it beats it on the shop's own validation split.

Features per candidate (:func:`candidate_features`), all from the candidate set a request already
holds, nothing over the catalogue: each source's score normalised over the candidates (as the
blend sees it) and the candidate's rank within that source, the linear blend's score, the
product's popularity and trending scores, its age at the fit, the share of the customer's
(recency-weighted) history in the product's category, and the history's length. The model is
LightGBM's LambdaRank (gradient-boosted trees with a ranking objective).

At request time the reranker only reorders the blend's best ``DEPTH`` candidates: they take
the linear blend's scores in the reranker's order (:meth:`Reranker.rescore`), so merchandising
boosts, diversity and every threshold see the same score distribution as without it. It is
saved inside the engine artifact as LightGBM's text model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.ranking.types import SOURCES

if TYPE_CHECKING:
    from .candidates import CandidateSet
    from .hybrid import HybridEngine
    from .scoring import Fused

DAY_SECONDS = 86_400.0
# The blend's best candidates the reranker reorders (its cost per request is bounded by this,
# not by the few hundred candidates of stage 1); the rest stay in the blend's order after them.
DEPTH = 100
# The sources whose scores and ranks are features: fixed, so a saved model keeps loading when a
# source is added (the exposure source fills slots after the reranker and is not one of them).
FEATURE_SOURCES = tuple(s for s in SOURCES if s != "exposure")
FEATURES = (
    *(f"{s}_score" for s in FEATURE_SOURCES),
    *(f"{s}_rank" for s in FEATURE_SOURCES),
    "blend",
    "blend_rank",
    "popularity",
    "trending",
    "age_days",
    "category_share",
    "history_length",
)


def candidate_features(engine: HybridEngine, cset: CandidateSet, positions: np.ndarray,
                       blend_total: np.ndarray) -> np.ndarray:  # fmt: skip
    """One row of :data:`FEATURES` per candidate position of ``positions``."""
    n = len(positions)
    out = np.zeros((n, len(FEATURES)), dtype=np.float32)
    sources = len(FEATURE_SOURCES)
    # Every source's scores at once, one row a source (``normalise`` row by row: the same
    # floats, in a handful of numpy calls instead of a dozen a source).
    clipped = np.zeros((sources, n), dtype=np.float64)
    for row, source in enumerate(FEATURE_SOURCES):
        raw = cset.raw.get(source)
        if raw is not None:
            clipped[row] = np.maximum(np.asarray(raw[positions], dtype=np.float64), 0.0)
    top = clipped.max(axis=1, keepdims=True) if n else np.zeros((sources, 1))
    values = np.divide(clipped, top, out=np.zeros_like(clipped), where=top > 0.0)
    order = np.argsort(-values, axis=1, kind="stable")
    rank = np.empty((sources, n), dtype=np.float64)
    np.put_along_axis(rank, order, np.arange(1, n + 1, dtype=np.float64)[None, :], axis=1)
    out[:, :sources] = values.T
    out[:, sources : 2 * sources] = np.where(values > 0, np.log1p(rank), np.log1p(n + 1)).T
    column = 2 * sources
    rows = np.full(n, -1, dtype=np.int64)
    known = positions < len(cset.rows)
    rows[known] = cset.rows[positions[known]]
    fitted = rows >= 0
    safe = np.where(fitted, rows, 0)
    blend_order = np.lexsort((np.arange(n), -np.asarray(blend_total)))
    blend_rank = np.empty(n, dtype=np.float64)
    blend_rank[blend_order] = np.arange(1, n + 1)
    fitted_at = float(engine.fitted_at or 0.0)
    tail = (
        blend_total,
        blend_rank,
        np.where(fitted, np.log1p(np.maximum(engine._pop[safe], 0)), 0.0),
        np.where(fitted, np.log1p(np.maximum(engine._trend[safe], 0)), 0.0),
        np.where(fitted, (fitted_at - engine._created[safe]) / DAY_SECONDS, 0.0),
        _category_share(engine, cset, safe, fitted),
        np.full(n, np.log1p(len(cset.profile.rows))),
    )
    for offset, values in enumerate(tail):
        out[:, column + offset] = values
    return out


def _category_share(engine: HybridEngine, cset: CandidateSet, rows: np.ndarray,
                    fitted: np.ndarray) -> np.ndarray:  # fmt: skip
    profile = cset.profile
    if not len(profile.rows) or not len(rows):
        return np.zeros(len(rows))
    codes = np.asarray(engine._category[profile.rows], dtype=np.int64)
    weights = np.maximum(np.asarray(profile.weights, dtype=np.float64), 0.0)
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(len(rows))
    present, inverse = np.unique(codes, return_inverse=True)
    share = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(present)) / total
    candidate = np.asarray(engine._category[rows], dtype=np.int64)
    at = np.clip(np.searchsorted(present, candidate), 0, len(present) - 1)
    return np.where(fitted & (present[at] == candidate), share[at], 0.0)


class Reranker:
    """A fitted LambdaRank model over :data:`FEATURES`, and how it was chosen."""

    def __init__(self, model_text: str, note: dict[str, Any]) -> None:
        import lightgbm  # The fit's and the web process's; imported when a shop has one.

        self.model_text = model_text
        self.note = note
        self._booster = lightgbm.Booster(model_str=model_text)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self._booster.predict(features, num_threads=1), dtype=np.float64)

    def rescore(self, engine: HybridEngine, fused: Fused) -> None:
        """Reorder the blend's best :data:`DEPTH` candidates of ``fused`` by the model: their
        scores, sorted, given out in the model's order (ties by the blend's order); the rest
        keep the blend's order after them."""
        head = fused.order[:DEPTH]
        if len(head) < 2:
            return
        features = candidate_features(engine, fused.cset, fused.positions[head], fused.total[head])
        new_head = head[np.lexsort((np.arange(len(head)), -self.predict(features)))]
        total = fused.total.copy()
        total[new_head] = fused.total[head]  # Descending: the head is in the blend's order.
        fused.total = total
        fused.order = np.concatenate([new_head, fused.order[DEPTH:]])

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_text, "note": self.note, "features": list(FEATURES)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reranker:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError("reranker: saved with other features; refit the engine")
        return cls(str(data["model"]), dict(data.get("note", {})))
