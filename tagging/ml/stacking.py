"""The stacked ensembles: several taggers' probabilities combined by a model chosen on
validation rows. Framework-free.

Owns two combiners. :func:`choose_weights` and :func:`blend`: a weighted average (greedy ensemble
selection with replacement, Caruana et al. 2004: start empty, repeatedly add the member whose
addition gives the best validation accuracy, ties broken by log-loss; a member's weight is the
share of steps that picked it). :class:`MetaStacker` and :func:`cross_fit_meta`: a multinomial
logistic regression (the meta-learner) on the members' log-probabilities side by side, which can
learn that one member is right about some tags and another about others, and which members'
confusions to trust; it is fitted on validation rows, its C chosen there by cross-fitting, and
its validation probabilities are out-of-fold (so thresholds chosen on them are honest).
Members are any taggers scoring the same tag columns: TF-IDF + LR on the texts, logistic / kNN /
MLP / zero-shot on either encoder's vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_STEPS = 20
# The meta-learner's inverse L2 strengths tried, and the folds of the cross-fitting.
META_C_GRID = (0.1, 1.0, 10.0)
META_FOLDS = 5
# Member probabilities are floored before the log: a kNN's zero votes would be -inf.
_FLOOR = 1e-4


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


def meta_features(probas: Mapping[str, np.ndarray], members: Sequence[str]) -> np.ndarray:
    """The members' log-probabilities side by side (rows x members*tags), floored at 1e-4."""
    if not members:
        raise ValueError("meta_features: no members")
    return np.hstack(
        [np.log(np.clip(np.asarray(probas[m], dtype=np.float64), _FLOOR, 1.0)) for m in members]
    )


@dataclass
class MetaStacker:
    """A multinomial logistic regression on the members' log-probabilities.

    ``members`` fixes the order of the feature blocks; :meth:`predict_proba` takes the same
    members' probabilities (a mapping; other entries are ignored) and returns one column per tag
    (``n_tags``; zeros for tags absent from the rows it was fitted on).
    """

    members: tuple[str, ...]
    n_tags: int
    c: float = 1.0
    model: Any = None
    classes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def fit(
        self, probas: Mapping[str, np.ndarray], targets: np.ndarray, *, seed: int = 0
    ) -> MetaStacker:
        targets = np.asarray(targets, dtype=np.int64)
        self.classes = np.unique(targets)
        self.model = None
        if len(self.classes) < 2:
            return self  # One class: predict_proba answers it with certainty.
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=self.c, max_iter=300, random_state=seed)
        self.model.fit(meta_features(probas, self.members), targets)
        return self

    def predict_proba(self, probas: Mapping[str, np.ndarray]) -> np.ndarray:
        rows = len(np.asarray(probas[self.members[0]]))
        out = np.zeros((rows, self.n_tags), dtype=np.float64)
        if self.model is None:
            if len(self.classes):
                out[:, self.classes[0]] = 1.0
            return out
        proba = self.model.predict_proba(meta_features(probas, self.members))
        out[:, np.asarray(self.model.classes_, dtype=np.int64)] = proba
        return out


def _folds(targets: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, stratified: a class's rows, shuffled, are dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(targets), dtype=np.int64)
    start = 0
    for cls in np.unique(targets):
        rows = rng.permutation(np.flatnonzero(targets == cls))
        fold[rows] = (start + np.arange(len(rows))) % folds
        start += len(rows)  # The next class continues the deal: fold sizes stay even.
    return fold


def cross_fit_meta(
    probas: Mapping[str, np.ndarray],
    targets: np.ndarray,
    *,
    n_tags: int,
    members: Sequence[str] | None = None,
    c_grid: Sequence[float] = META_C_GRID,
    folds: int = META_FOLDS,
    seed: int = 0,
) -> tuple[MetaStacker, np.ndarray]:
    """The meta-learner on these (validation) rows, and its out-of-fold probabilities of them.

    Each C of ``c_grid`` is scored by ``folds``-fold cross-fitting on the rows (best accuracy,
    ties by log-loss, then the first C); the returned stacker is refitted on every row with
    that C, and the returned probabilities are the chosen C's out-of-fold ones: each row scored
    by a meta-learner that never saw it.
    """
    names = tuple(members if members is not None else probas)
    targets = np.asarray(targets, dtype=np.int64)
    if not len(targets):
        raise ValueError("cross_fit_meta: no rows")
    if not c_grid:
        raise ValueError("cross_fit_meta: empty c_grid")
    folds = max(2, min(folds, len(targets)))
    fold = _folds(targets, folds, seed)
    best: tuple[tuple[float, float], float, np.ndarray] | None = None
    for c in c_grid:
        oof = np.zeros((len(targets), n_tags), dtype=np.float64)
        for f in range(folds):
            out = fold == f
            if not out.any():
                continue
            fitted = MetaStacker(names, n_tags, c=c).fit(
                {m: np.asarray(probas[m])[~out] for m in names}, targets[~out], seed=seed
            )
            oof[out] = fitted.predict_proba({m: np.asarray(probas[m])[out] for m in names})
        score = _score(oof, targets)
        if best is None or score > best[0]:
            best = (score, float(c), oof)
    assert best is not None
    return MetaStacker(names, n_tags, c=best[1]).fit(probas, targets, seed=seed), best[2]
