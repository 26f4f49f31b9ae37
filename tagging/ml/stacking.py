"""The stacked ensemble: a weighted average of several taggers' probabilities, with the weights
chosen on validation rows. Framework-free.

Owns :func:`choose_weights` (greedy ensemble selection with replacement, Caruana et al. 2004:
start empty, repeatedly add the member whose addition gives the best validation accuracy, ties
broken by log-loss; a member's weight is the share of steps that picked it) and :func:`blend`.
Members are any taggers scoring the same tag columns: TF-IDF + LR on the texts, logistic / kNN /
MLP / zero-shot on either encoder's vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_STEPS = 20


def blend(probas: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Sum of weight * proba over the members with a positive weight (weights summing to 1)."""
    used = {name: w for name, w in weights.items() if w > 0}
    if not used:
        raise ValueError("weights: no member has a positive weight")
    total = sum(used.values())
    out = None
    for name, w in used.items():
        part = np.asarray(probas[name], dtype=np.float64) * (w / total)
        out = part if out is None else out + part
    assert out is not None
    return out


def _score(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    accuracy = float((np.argmax(proba, axis=1) == y).mean())
    nll = float(-np.log(np.maximum(proba[np.arange(len(y)), y], 1e-12)).mean())
    return accuracy, -nll


def choose_weights(
    val_probas: Mapping[str, np.ndarray],
    y_val: np.ndarray,
    *,
    steps: int = DEFAULT_STEPS,
    candidates: Sequence[str] | None = None,
) -> dict[str, float]:
    """Each member's weight (summing to 1; absent members weigh 0), chosen on validation rows.

    Greedy forward selection with replacement over ``steps`` steps, stopping early when no
    addition improves validation accuracy (then log-loss). Deterministic: ties go to the member
    named first.
    """
    names = list(candidates if candidates is not None else val_probas)
    if not names:
        raise ValueError("choose_weights: no members")
    y_val = np.asarray(y_val, dtype=np.int64)
    counts = dict.fromkeys(names, 0)
    current: np.ndarray | None = None
    best_score: tuple[float, float] | None = None
    for step in range(steps):
        choice, choice_score, choice_proba = None, None, None
        for name in names:
            p = np.asarray(val_probas[name], dtype=np.float64)
            proba = p if current is None else (current * step + p) / (step + 1)
            score = _score(proba, y_val)
            if choice_score is None or score > choice_score:
                choice, choice_score, choice_proba = name, score, proba
        assert choice is not None
        assert choice_score is not None
        if best_score is not None and choice_score <= best_score:
            break
        counts[choice] += 1
        current, best_score = choice_proba, choice_score
    total = sum(counts.values())
    return {name: round(n / total, 4) for name, n in counts.items() if n}
