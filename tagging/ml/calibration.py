"""Auto-accept thresholds: the confidence above which suggestions reach a target precision.

Framework-free. Owns :func:`precision_threshold` (the lowest confidence at which the
suggestions above it were right at least ``target`` of the time on reviewed data),
:func:`auto_accept_thresholds` (one per tag, and one global for tags with too few reviews) and
:func:`coverage_at_precision` (what share of products a threshold accepts, and how precisely).

A threshold is chosen on reviewed (or validation) rows that the model did not learn from, then
applied to new rows; its precision there is measured again, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TARGET_PRECISION = 0.95
# A per-tag threshold needs this many held-out predictions of the tag above it; below that a
# tag uses the global threshold (a precision measured on three rows means nothing).
MIN_TAG_SUPPORT = 20
NEVER = float("inf")  # A threshold no confidence reaches: nothing is auto-accepted.
# The measured precision must reach the target with this margin: the lower end of a one-sided
# 95% Wilson interval. Taking the raw measured precision instead picks, among many candidate
# thresholds, one whose reviewed sample happened to look good: on calibrated synthetic data it
# then reached the target on new rows about half the time, with this margin 9 times in 10.
DEFAULT_Z = 1.645


def wilson_lower(hits: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """Lower end of the Wilson score interval of a proportion ``hits / n``."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1e-12)
    p = np.asarray(hits, dtype=np.float64) / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.asarray((centre - margin) / (1 + z * z / n))


def precision_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    *,
    target: float,
    min_support: int = 1,
    z: float = DEFAULT_Z,
) -> float:
    """The lowest threshold ``t`` such that the rows with confidence >= ``t`` number at least
    ``min_support`` and are correct at least ``target`` of the time with confidence (the lower
    end of the Wilson interval at ``z`` reaches ``target``; ``z=0``: the measured share);
    :data:`NEVER` if none.

    "Lowest" maximises coverage. The precision of "confidence >= t" is not monotone in t, so
    every distinct confidence is a candidate: the answer is the lowest one whose whole upper set
    reaches the target.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target: must be within (0, 1], got {target}")
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape:
        raise ValueError("confidence and correct differ in shape")
    if not len(confidence):
        return NEVER
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    hits = np.cumsum(correct[order])
    n = np.arange(1, len(order) + 1)
    # Only cut between distinct confidences: ties are all in or all out.
    last_of_tie = np.r_[conf_sorted[1:] != conf_sorted[:-1], True]
    reached = wilson_lower(hits, n, z) >= target - 1e-9 if z > 0 else hits >= target * n - 1e-9
    ok = last_of_tie & (n >= min_support) & reached
    if not ok.any():
        return NEVER
    return float(conf_sorted[np.flatnonzero(ok)[-1]])


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per-tag auto-accept thresholds (:data:`NEVER`: that tag is never auto-accepted).

    ``per_tag[i]`` is the threshold of tag column ``i``; ``own[i]`` says whether it was
    measured on the tag's own reviews (else it is the global one); ``support``/``precision``
    are what the choice was measured on (held-out predictions of the tag above its threshold,
    and their precision; NaN where none).
    """

    target: float
    global_threshold: float
    per_tag: np.ndarray
    own: np.ndarray
    support: np.ndarray
    precision: np.ndarray

    def accepts(self, tags: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        return np.asarray(confidence) >= self.per_tag[np.asarray(tags, dtype=np.int64)]


def auto_accept_thresholds(
    proba: np.ndarray,
    y_true: np.ndarray,
    *,
    target: float = DEFAULT_TARGET_PRECISION,
    min_tag_support: int = MIN_TAG_SUPPORT,
) -> Thresholds:
    """Thresholds on held-out reviewed rows: ``proba`` (rows x tags), ``y_true`` each row's
    confirmed tag column. A suggestion is the row's top tag with its probability.

    Global: one threshold over every tag's suggestions. Per tag: the tag's own threshold where
    its held-out suggestions establish one (``min_tag_support`` of them above it, reaching
    ``target`` with confidence); otherwise the global threshold, except for a tag whose own
    suggestions above the global threshold (``min_tag_support`` or more) measurably miss the
    target: that tag is never auto-accepted.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    n_tags = proba.shape[1]
    pred = np.argmax(proba, axis=1) if len(proba) else np.empty(0, dtype=np.int64)
    conf = proba[np.arange(len(proba)), pred] if len(proba) else np.empty(0)
    correct = pred == y_true
    global_t = precision_threshold(conf, correct, target=target, min_support=min_tag_support)
    per_tag = np.full(n_tags, global_t)
    own = np.zeros(n_tags, dtype=bool)
    support = np.zeros(n_tags, dtype=np.int64)
    precision = np.full(n_tags, np.nan)
    for tag in range(n_tags):
        mine = pred == tag
        if mine.sum() >= min_tag_support:
            t = precision_threshold(
                conf[mine], correct[mine], target=target, min_support=min_tag_support
            )
            if np.isfinite(t):
                per_tag[tag], own[tag] = t, True
            else:
                # Too few reviews to establish a threshold of its own: the global one, unless
                # the tag's own suggestions above it measurably miss the target.
                above = mine & (conf >= global_t)
                n_above, misses = int(above.sum()), int((~correct[above]).sum())
                upper = 1.0 - float(wilson_lower(np.array(misses), np.array(n_above), DEFAULT_Z))
                if n_above >= min_tag_support and upper < target:
                    per_tag[tag] = NEVER
        above = mine & (conf >= per_tag[tag])
        support[tag] = int(above.sum())
        if above.any():
            precision[tag] = float(correct[above].mean())
    return Thresholds(target, global_t, per_tag, own, support, precision)


def coverage_at_precision(
    proba: np.ndarray, y_true: np.ndarray, threshold: float | np.ndarray
) -> dict[str, float]:
    """Share of rows whose top tag's confidence reaches ``threshold`` (one, or one per tag
    column), and the precision of those top tags (NaN when none is covered)."""
    proba = np.asarray(proba, dtype=np.float64)
    pred = np.argmax(proba, axis=1)
    conf = proba[np.arange(len(proba)), pred]
    limit = threshold[pred] if isinstance(threshold, np.ndarray) else threshold
    covered = conf >= limit
    precision = float((pred[covered] == y_true[covered]).mean()) if covered.any() else np.nan
    return {
        "coverage": round(float(covered.mean()) if len(proba) else 0.0, 4),
        "precision": round(precision, 4) if covered.any() else float("nan"),
        "covered": int(covered.sum()),
    }
