"""The taggers: zero-shot and supervised tag scoring over vectors, and how they are combined.

Framework-free. Everything here works on numpy arrays of L2-normalised product and tag vectors
from the same embedder; the services load and store them.

- :class:`ZeroShotTagger`: cosine of a product vector with each tag's vector (the tag's
  ``name + description`` embedded by the same model). Raw cosines are not comparable across tags
  (a broad tag sits near everything), so each tag's scores are standardised over the catalogue
  (z-scores), then turned into a distribution over tags by a softmax with a temperature. The
  temperature is fitted on confirmed tags when any exist (minimum negative log-likelihood), so a
  confidence of 0.7 means about 70% of such suggestions are right.
- :class:`SupervisedTagger`: a multinomial logistic regression (or a cosine kNN) on product
  vectors, trained on accepted tags; products whose only reviews are rejections form a
  background class, so rejections push confidence down near them.
- :func:`per_tag_winner`: on held-out confirmed tags, which of the two taggers has the better F1
  for each tag; the supervised one takes over only where it wins (:func:`combine`).
- :func:`suggest`: calibrated threshold + top-k, multi-label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKGROUND = "__background__"  # Class of products whose reviews were only rejections.
DEFAULT_TEMPERATURE = 0.35  # On z-scores; used until confirmed tags allow a fit.
_TEMPERATURES = np.geomspace(0.02, 5.0, 60)


def tag_text(name: str, description: str = "") -> str:
    """The text embedded for a tag: its leaf, its path read from the top, its description.

    ``"dairy eggs/yogurt"`` reads ``"yogurt (dairy eggs)"``: the leaf says what the tag is, the
    path disambiguates (``"frozen/breakfast"`` vs ``"breakfast/cereal"``).
    """
    parts = [p.strip() for p in name.split("/") if p.strip()]
    if not parts:
        raise ValueError("tag name is empty")
    text = parts[-1] if len(parts) == 1 else f"{parts[-1]} ({' '.join(parts[:-1])})"
    description = " ".join(description.split())
    return f"{text}: {description}" if description else text


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The softmax temperature with the least negative log-likelihood of ``targets``.

    A grid search over a log scale: one parameter, and the likelihood is smooth in it.
    """
    if len(targets) == 0:
        raise ValueError("no confirmed examples to fit a temperature on")
    rows = np.arange(len(targets))
    best, best_nll = DEFAULT_TEMPERATURE, math.inf
    for t in _TEMPERATURES:
        p = softmax(logits / t)[rows, targets]
        nll = float(-np.log(np.maximum(p, 1e-12)).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


@dataclass
class ZeroShotTagger:
    """Product vs tag vectors, standardised per tag, softmax with a fitted temperature.

    ``mean``/``std``: each tag's cosine statistics over the catalogue (set by :meth:`fit`);
    ``standardise=False`` keeps raw cosines (the evaluation reports both).
    """

    tag_vectors: np.ndarray
    standardise: bool = True
    temperature: float = DEFAULT_TEMPERATURE
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, catalogue_vectors: np.ndarray) -> ZeroShotTagger:
        """Per-tag cosine statistics over the catalogue (or a sample of it)."""
        if self.standardise and len(catalogue_vectors):
            cos = np.asarray(catalogue_vectors, dtype=np.float32) @ self.tag_vectors.T
            self.mean = cos.mean(axis=0)
            self.std = np.maximum(cos.std(axis=0), 1e-6)
        if not self.standardise:
            # Raw cosines live on a much narrower scale than z-scores.
            self.temperature = min(self.temperature, 0.05)
        return self

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        cos = np.asarray(vectors, dtype=np.float32) @ self.tag_vectors.T
        if self.standardise and self.mean is not None and self.std is not None:
            return (cos - self.mean) / self.std
        return cos

    def calibrate(self, vectors: np.ndarray, targets: np.ndarray) -> ZeroShotTagger:
        """Fit the temperature on confirmed (vector, tag column) pairs."""
        self.temperature = fit_temperature(self.logits(vectors), targets)
        return self

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(self.logits(vectors) / self.temperature)


@dataclass
class SupervisedTagger:
    """A classifier on product vectors learned from confirmed tags.

    ``classes`` are column indexes into the caller's tag list, plus possibly -1 for the
    background class (products whose reviews were only rejections). :meth:`predict_proba`
    returns one column per tag of the caller's list (zeros for tags it never saw).
    """

    n_tags: int
    method: str = "logistic"  # "logistic" or "knn"
    c: float = 8.0  # Inverse L2 strength of the logistic regression.
    k: int = 20  # Neighbours of the kNN.
    model: Any = None
    classes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    train_vectors: np.ndarray | None = None
    train_targets: np.ndarray | None = None

    def fit(self, vectors: np.ndarray, targets: np.ndarray, *, seed: int = 0) -> SupervisedTagger:
        """``targets``: a tag column per row, or -1 for a background (rejected-only) row."""
        targets = np.asarray(targets, dtype=np.int64)
        self.classes = np.unique(targets)
        if self.method == "knn":
            self.train_vectors = np.asarray(vectors, dtype=np.float32)
            self.train_targets = targets
            return self
        if self.method != "logistic":
            raise ValueError(f"method: expected 'logistic' or 'knn', got {self.method!r}")
        if len(self.classes) < 2:
            return self  # One class: predict_proba answers it with certainty.
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=self.c, max_iter=200, random_state=seed)
        self.model.fit(np.asarray(vectors, dtype=np.float32), targets)
        return self

    def _class_proba(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.method == "knn":
            if self.train_vectors is None or self.train_targets is None:
                raise RuntimeError("the kNN tagger is not fitted")
            return knn_proba(
                self.train_vectors, self.train_targets, vectors, classes=self.classes, k=self.k
            )
        if self.model is None:
            return np.ones((len(vectors), len(self.classes)), dtype=np.float64)
        return np.asarray(self.model.predict_proba(vectors), dtype=np.float64)

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        proba = self._class_proba(vectors)
        out = np.zeros((len(proba), self.n_tags), dtype=np.float64)
        keep = self.classes >= 0
        out[:, self.classes[keep]] = proba[:, keep]
        return out


def knn_proba(
    train: np.ndarray,
    train_targets: np.ndarray,
    queries: np.ndarray,
    *,
    classes: np.ndarray,
    k: int,
    chunk: int = 2048,
) -> np.ndarray:
    """Cosine-weighted vote of the ``k`` nearest training vectors, normalised per row."""
    position = {int(c): i for i, c in enumerate(classes)}
    columns = np.array([position[int(t)] for t in train_targets], dtype=np.int64)
    k = max(1, min(k, len(train)))
    out = np.zeros((len(queries), len(classes)), dtype=np.float64)
    for start in range(0, len(queries), chunk):
        sims = queries[start : start + chunk] @ train.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) + 1e-6
        block = out[start : start + chunk]
        rows = np.repeat(np.arange(len(block)), k)
        np.add.at(block, (rows, columns[top].ravel()), weights.ravel())
    return out / out.sum(axis=1, keepdims=True)


def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 of each class (NaN where a class is neither true nor predicted)."""
    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(np.float64)
    true = np.bincount(y_true, minlength=n_classes).astype(np.float64)
    pred = np.bincount(y_pred, minlength=n_classes).astype(np.float64)
    denominator = true + pred
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def per_tag_winner(
    y_true: np.ndarray, zero_shot_pred: np.ndarray, supervised_pred: np.ndarray, n_tags: int
) -> np.ndarray:
    """True for each tag where the supervised tagger's held-out F1 beats zero-shot's.

    A tag with no held-out example stays with zero-shot: nothing shows supervised wins there.
    """
    zs = np.nan_to_num(f1_per_class(y_true, zero_shot_pred, n_tags), nan=-1.0)
    sup = np.nan_to_num(f1_per_class(y_true, supervised_pred, n_tags), nan=-1.0)
    seen = np.bincount(y_true, minlength=n_tags) > 0
    return seen & (sup > zs)


def combine(zero_shot: np.ndarray, supervised: np.ndarray | None, winner: np.ndarray) -> np.ndarray:
    """Per tag, the probability of the tagger that won it; rows renormalised to sum to 1."""
    if supervised is None or not winner.any():
        return zero_shot
    mixed = np.where(winner[None, :], supervised, zero_shot)
    total = mixed.sum(axis=1, keepdims=True)
    return np.divide(mixed, total, out=np.zeros_like(mixed), where=total > 0)


@dataclass(frozen=True, slots=True)
class Suggestion:
    row: int  # Row of the product in the scored matrix.
    tag: int  # Column of the tag.
    confidence: float


def suggest(proba: np.ndarray, *, threshold: float, top_k: int) -> list[Suggestion]:
    """Multi-label suggestions: up to ``top_k`` tags per product with confidence >= threshold."""
    if top_k < 1:
        raise ValueError(f"top_k: must be >= 1, got {top_k}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: must be within [0, 1], got {threshold}")
    out: list[Suggestion] = []
    if proba.size == 0:
        return out
    k = min(top_k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    for row, columns in enumerate(top):
        for column in columns:
            p = float(proba[row, column])
            if p < threshold:
                break
            out.append(Suggestion(row=row, tag=int(column), confidence=min(max(p, 0.0), 1.0)))
    return out
