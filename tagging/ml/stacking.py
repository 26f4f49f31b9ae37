"""The stacked ensembles: several taggers' probabilities combined by a model chosen on
validation rows. Framework-free.

Owns two combiners. :func:`choose_weights` and :func:`blend`: a weighted average (greedy ensemble
selection with replacement, Caruana et al. 2004: start empty, repeatedly add the member whose
addition gives the best validation accuracy, ties broken by log-loss; a member's weight is the
share of steps that picked it). :class:`MetaStacker` and :func:`cross_fit_meta`: a learned
log-linear pool (the meta-learner), a conditional logistic regression whose logit for a tag is
``sum_m (w_m + d_mt) * log p_m(t) + b_t``: a weight per member (which also sets how sharp the
pooled confidence is: it calibrates), an L2-penalised per-tag deviation from it (one member is
trusted more on some tags, another on others) and a per-tag bias. A few parameters per tag, so
a validation split of a few dozen rows per tag fits it (a full multinomial regression on every
member's every log-probability has members x tags parameters per tag and over-fits there). It
is fitted on validation rows, its per-tag penalty chosen there by cross-fitting, and its
validation probabilities are out-of-fold (so thresholds chosen on them are honest).
Members are any taggers scoring the same tag columns: TF-IDF + LR on the texts, logistic / kNN /
MLP / zero-shot on either encoder's vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_STEPS = 20
# The meta-learner's L2 strengths on the per-tag deviations tried (inf: no deviations, one
# weight per member), and the folds of the cross-fitting.
META_PER_TAG_GRID = (float("inf"), 1e-2, 1e-3)
META_FOLDS = 5
# L2 strength on the per-tag biases: a tag absent from the fitting rows keeps a finite bias.
META_BIAS_L2 = 1e-3
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
    """The members' log-probabilities (members x rows x tags), floored at 1e-4."""
    if not members:
        raise ValueError("meta_features: no members")
    return np.stack(
        [np.log(np.clip(np.asarray(probas[m], dtype=np.float64), _FLOOR, 1.0)) for m in members]
    )


@dataclass
class MetaStacker:
    """A learned log-linear pool of the members' probabilities.

    ``members`` fixes the order of the members; :meth:`predict_proba` takes the same members'
    probabilities (a mapping; other entries are ignored) and returns one column per tag
    (``n_tags``). ``per_tag``: the L2 strength on the per-tag deviations (inf: none).
    """

    members: tuple[str, ...]
    n_tags: int
    per_tag: float = float("inf")
    weights: np.ndarray = field(default_factory=lambda: np.empty(0))
    deviations: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    bias: np.ndarray = field(default_factory=lambda: np.empty(0))

    def _unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, t = len(self.members), self.n_tags
        w, rest = x[:m], x[m:]
        if np.isfinite(self.per_tag):
            d, b = rest[: m * t].reshape(m, t), rest[m * t :]
        else:
            d, b = np.zeros((m, t)), rest
        return w, d, b

    def fit(self, probas: Mapping[str, np.ndarray], targets: np.ndarray) -> MetaStacker:
        """Least penalised negative log-likelihood of ``targets`` (L-BFGS; convex)."""
        from scipy.optimize import minimize

        logp = meta_features(probas, self.members)
        targets = np.asarray(targets, dtype=np.int64)
        m, n, t = logp.shape
        if n == 0:
            raise ValueError("MetaStacker.fit: no rows")
        rows = np.arange(n)
        deviations = np.isfinite(self.per_tag)

        def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
            w, d, b = self._unpack(x)
            z = np.einsum("mnt,mt->nt", logp, w[:, None] + d) + b
            z -= z.max(axis=1, keepdims=True)
            log_total = np.log(np.exp(z).sum(axis=1))
            value = float((log_total - z[rows, targets]).mean())
            g = np.exp(z - log_total[:, None])
            g[rows, targets] -= 1.0
            g /= n
            per = np.einsum("mnt,nt->mt", logp, g)
            parts = [per.sum(axis=1)]
            if deviations:
                parts.append((per + self.per_tag * d).ravel())
                value += 0.5 * self.per_tag * float((d * d).sum())
            parts.append(g.sum(axis=0) + META_BIAS_L2 * b)
            value += 0.5 * META_BIAS_L2 * float((b * b).sum())
            return value, np.concatenate(parts)

        x0 = np.concatenate(
            [np.full(m, 1.0 / m), np.zeros(m * t if deviations else 0), np.zeros(t)]
        )
        result = minimize(loss, x0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.weights, self.deviations, self.bias = self._unpack(np.asarray(result.x))
        return self

    def predict_proba(self, probas: Mapping[str, np.ndarray]) -> np.ndarray:
        if not len(self.weights):
            raise RuntimeError("the meta-learner is not fitted")
        logp = meta_features(probas, self.members)
        z = np.einsum("mnt,mt->nt", logp, self.weights[:, None] + self.deviations) + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))


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
    per_tag_grid: Sequence[float] = META_PER_TAG_GRID,
    folds: int = META_FOLDS,
    seed: int = 0,
) -> tuple[MetaStacker, np.ndarray]:
    """The meta-learner on these (validation) rows, and its out-of-fold probabilities of them.

    Each per-tag penalty of ``per_tag_grid`` is scored by ``folds``-fold cross-fitting on the
    rows (best accuracy, ties by log-loss, then the first); the returned stacker is refitted on
    every row with it, and the returned probabilities are the chosen penalty's out-of-fold ones:
    each row scored by a meta-learner that never saw it.
    """
    names = tuple(members if members is not None else probas)
    targets = np.asarray(targets, dtype=np.int64)
    if not len(targets):
        raise ValueError("cross_fit_meta: no rows")
    if not per_tag_grid:
        raise ValueError("cross_fit_meta: empty per_tag_grid")
    folds = max(2, min(folds, len(targets)))
    fold = _folds(targets, folds, seed)
    best: tuple[tuple[float, float], float, np.ndarray] | None = None
    for per_tag in per_tag_grid:
        oof = np.zeros((len(targets), n_tags), dtype=np.float64)
        for f in range(folds):
            out = fold == f
            if not out.any():
                continue
            fitted = MetaStacker(names, n_tags, per_tag=per_tag).fit(
                {m: np.asarray(probas[m])[~out] for m in names}, targets[~out]
            )
            oof[out] = fitted.predict_proba({m: np.asarray(probas[m])[out] for m in names})
        score = _score(oof, targets)
        if best is None or score > best[0]:
            best = (score, float(per_tag), oof)
    assert best is not None
    return MetaStacker(names, n_tags, per_tag=best[1]).fit(probas, targets), best[2]
