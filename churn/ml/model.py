"""The churn model: gradient boosting on stacked past snapshots, calibrated, with baselines.

Training never reads a label it could not have known: given ``label_end`` (the evaluation
cutoff, or the scoring time in production), every training snapshot's label window ends by
``label_end``. When the history is too short for the requested horizon (CDNOW: nine months of
data before the cutoff, a 273-day horizon), the training snapshots use the longest shorter
horizon that still fits ``min_snapshots`` of them; the model then ranks by the risk of a quiet
spell of that length, which orders customers much as the longer one does (docs/churn.md).

Besides the main task (label window ``train_horizon``), the booster also learns from shorter
label windows (fractions of it) on snapshots newer than the main task's newest, with the label
window's length as an input: those snapshots are closer to the present (more history per
customer, the latest behaviour), which ranked better on the validation cutoffs of both
datasets. Scoring always asks for the main task's window.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from . import bgnbd
from .features import FEATURE_NAMES, RFM_FEATURES, EventLog, Snapshot, churn_labels, snapshot

# 2: the booster takes the label window as one more input (extra training tasks).
# 3: saved as a JSON manifest and npz arrays, not a pickle (churn.ml.persistence).
ARTIFACT_FORMAT = 3


class NotEnoughHistory(ValueError):
    """The events do not reach far enough back to train with complete labels."""


@dataclass(frozen=True)
class TrainingConfig:
    """How snapshots are laid out and the booster's settings (tuned on earlier cutoffs only)."""

    n_snapshots: int = 8
    min_snapshots: int = 3
    step_days: float = 14.0
    min_history_days: float = 60.0
    min_horizon_days: float = 28.0
    # Extra training tasks: label windows of these fractions of the main one, on snapshots
    # (step_days apart) newer than the main task's newest (validated, docs/churn.md).
    extra_horizons: tuple[float, ...] = (0.75, 0.5, 0.25)
    calibration: str = "sigmoid"  # or "isotonic"
    # Shallow, strongly regularised trees: consecutive snapshots repeat the same customers, so a
    # deeper booster memorises them (validated on the cutoffs before the evaluation cutoffs,
    # docs/churn.md).
    learning_rate: float = 0.05
    max_iter: int = 100
    max_depth: int = 3
    min_samples_leaf: int = 100
    l2_regularization: float = 0.0
    monotonic: bool = True
    random_state: int = 0
    # Threads for the booster; these data are small, and on a shared machine more threads
    # mostly wait for each other.
    threads: int = 1


# Risk may only rise with these features (+1) or fall (-1), all else equal: it keeps the trees
# from learning noise between snapshots, and keeps explanations plausible.
MONOTONIC: dict[str, int] = {
    "recency_days": 1,
    "recency_share": 1,
    "activity_recency_days": 1,
    "frequency": -1,
    "purchase_rate": -1,
    "purchases_30d": -1,
    "purchases_90d": -1,
    "purchases_180d": -1,
    "bgnbd_p_alive": -1,
    "bgnbd_expected": -1,
}


@dataclass(frozen=True)
class TrainingPlan:
    label_end: float
    horizon: float
    train_horizon: float
    cutoffs: tuple[float, ...]  # Newest first; the oldest is held out for calibration.
    # (label window, cutoffs newest first) of the shorter extra tasks.
    extra: tuple[tuple[float, tuple[float, ...]], ...] = ()


def training_plan(
    log: EventLog, *, label_end: float, horizon: float, config: TrainingConfig
) -> TrainingPlan:
    """Training cutoffs whose label windows end by ``label_end``, newest first."""
    if len(log) == 0:
        raise NotEnoughHistory("no events")
    earliest = log.first_time + config.min_history_days
    room = label_end - earliest - (config.min_snapshots - 1) * config.step_days
    train_horizon = float(min(horizon, np.floor(room + 1e-6)))  # Whole days, despite rounding.
    if train_horizon < config.min_horizon_days:
        raise NotEnoughHistory(
            f"the events start {label_end - log.first_time:.0f} days before the label end; "
            f"{config.min_snapshots} snapshots {config.step_days:.0f} days apart with "
            f"{config.min_history_days:.0f} days of history and a label window of at least "
            f"{config.min_horizon_days:.0f} days do not fit"
        )
    cutoffs = []
    for k in range(config.n_snapshots):
        c = label_end - train_horizon - k * config.step_days
        if c < earliest - 1e-6:
            break
        cutoffs.append(float(c))
    extra = []
    for fraction in config.extra_horizons:
        window = float(np.floor(train_horizon * fraction))
        if window < 1.0:
            continue
        later = []
        for k in range(config.n_snapshots):
            c = label_end - window - k * config.step_days
            if c < earliest - 1e-6 or c <= cutoffs[0] + 1e-6:
                break
            later.append(float(c))
        if later:
            extra.append((window, tuple(later)))
    return TrainingPlan(label_end, float(horizon), train_horizon, tuple(cutoffs), tuple(extra))


def _booster(config: TrainingConfig) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=config.learning_rate,
        max_iter=config.max_iter,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        # The last input is the label window's length (unconstrained, as validated).
        monotonic_cst=[*(MONOTONIC.get(name, 0) for name in FEATURE_NAMES), 0]
        if config.monotonic
        else None,
        random_state=config.random_state,
    )


def _with_window(X: np.ndarray, window: float) -> np.ndarray:
    """The booster's input: the features plus the label window's length in days."""
    return np.column_stack([X, np.full(len(X), window)])


@dataclass
class PlattBooster:
    """A booster trained on every snapshot, with a sigmoid map of its log-odds fitted on the
    held-out snapshot's log-odds of a second booster trained without that snapshot."""

    booster: HistGradientBoostingClassifier
    platt: LogisticRegression

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.platt.predict_proba(self.booster.decision_function(X).reshape(-1, 1))
        )


def _rfm_columns(X: np.ndarray) -> np.ndarray:
    idx = [FEATURE_NAMES.index(name) for name in RFM_FEATURES]
    return np.log1p(np.maximum(X[:, idx], 0.0))


def rfm_logistic_regression() -> Pipeline:
    """The RFM baseline: logistic regression on log recency, frequency and tenure."""
    return make_pipeline(
        FunctionTransformer(_rfm_columns), StandardScaler(), LogisticRegression(C=1.0)
    )


@dataclass
class ChurnModel:
    """A calibrated churn classifier over :data:`FEATURE_NAMES`, ready to score and explain."""

    version: str
    horizon: float
    train_horizon: float
    feature_names: tuple[str, ...]
    medians: np.ndarray
    classifier: Any
    importances: dict[str, float]
    plan: TrainingPlan
    config: TrainingConfig
    training_rows: int
    training_churn_rate: float
    format: int = ARTIFACT_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(no purchase within the horizon) per row."""
        if len(X) == 0:
            return np.zeros(0)
        with threadpool_limits(self.config.threads):
            inputs = _with_window(X, self.train_horizon)
            return np.asarray(self.classifier.predict_proba(inputs)[:, 1], dtype=np.float64)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's effect on each row's score, in probability points.

        The effect of feature j is p(x) - p(x with feature j set to its training median): how
        much lower (or higher) the risk would be if that one feature were typical. It is exact
        for the model (no approximation of the trees) and reads as "why this customer differs
        from a typical one"; effects of correlated features overlap and need not sum to the
        score.
        """
        base = self.predict(X)
        out = np.zeros(X.shape)
        for j, median in enumerate(self.medians):
            if np.isnan(median):
                continue
            changed = X.copy()
            changed[:, j] = median
            out[:, j] = base - self.predict(changed)
        return out


def training_data(log: EventLog, plan: TrainingPlan) -> list[tuple[Snapshot, np.ndarray]]:
    """(snapshot, labels) per training cutoff of the main task, newest first."""
    out = []
    for cutoff in plan.cutoffs:
        snap = snapshot(log, cutoff=cutoff, horizon=plan.train_horizon)
        out.append((snap, churn_labels(log, snap, horizon=plan.train_horizon)))
    return out


def extra_training_data(log: EventLog, plan: TrainingPlan) -> tuple[np.ndarray, np.ndarray]:
    """Booster inputs (features and label window) and labels of the extra tasks."""
    inputs, labels = [np.empty((0, len(FEATURE_NAMES) + 1))], [np.empty(0, dtype=np.int8)]
    for window, cutoffs in plan.extra:
        for cutoff in cutoffs:
            snap = snapshot(log, cutoff=cutoff, horizon=window)
            inputs.append(_with_window(snap.X, window))
            labels.append(churn_labels(log, snap, horizon=window))
    return np.vstack(inputs), np.concatenate(labels)


def _version(X: np.ndarray, y: np.ndarray, plan: TrainingPlan, config: TrainingConfig) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    digest.update(repr((asdict(plan), asdict(config), FEATURE_NAMES)).encode())
    day = np.datetime64(int(plan.label_end * 86400), "s").astype("datetime64[D]")
    return f"churn-{str(day).replace('-', '')}-h{int(plan.horizon)}-{digest.hexdigest()[:10]}"


def fit_model(
    log: EventLog, *, label_end: float, horizon: float, config: TrainingConfig | None = None
) -> tuple[ChurnModel, Pipeline]:
    """Train the booster on every training snapshot; calibrate it on the oldest main one.

    The calibration map (Platt) is fitted on the oldest main snapshot's log-odds from a second
    booster trained on everything else, then applied to the booster trained on everything:
    the held-out map stays honest, and the trees see every snapshot (which ranked better on
    the validation cutoffs, docs/churn.md). Returns the model and the RFM logistic-regression
    baseline trained on the main task's snapshots.
    """
    config = config or TrainingConfig()
    with threadpool_limits(config.threads):
        return _fit_model(log, label_end=label_end, horizon=horizon, config=config)


def _fit_model(
    log: EventLog, *, label_end: float, horizon: float, config: TrainingConfig
) -> tuple[ChurnModel, Pipeline]:
    plan = training_plan(log, label_end=label_end, horizon=horizon, config=config)
    data = training_data(log, plan)
    if len(data) < 2:
        raise NotEnoughHistory("need at least two training snapshots (one to calibrate)")
    (cal_snap, cal_y), rest = data[-1], data[:-1]
    X_extra, y_extra = extra_training_data(log, plan)
    X_train = np.vstack([*(_with_window(s.X, plan.train_horizon) for s, _ in rest), X_extra])
    y_train = np.concatenate([*(y for _, y in rest), y_extra])
    if len(np.unique(y_train)) < 2 or len(np.unique(cal_y)) < 2:
        raise NotEnoughHistory("the training labels have a single class")
    X_cal = _with_window(cal_snap.X, plan.train_horizon)
    held_out = _booster(config).fit(X_train, y_train)
    if config.calibration == "sigmoid":
        platt = LogisticRegression(C=1e6).fit(
            held_out.decision_function(X_cal).reshape(-1, 1), cal_y
        )
        booster = _booster(config).fit(np.vstack([X_train, X_cal]), np.r_[y_train, cal_y])
        classifier: Any = PlattBooster(booster, platt)
    else:  # Isotonic: on the held-out booster itself (a step map does not transfer).
        classifier = CalibratedClassifierCV(FrozenEstimator(held_out), method="isotonic")
        classifier.fit(X_cal, cal_y)
    X_main = np.vstack([*(s.X for s, _ in rest), cal_snap.X])
    y_main = np.concatenate([*(y for _, y in rest), cal_y])
    X_all = np.vstack([X_train, X_cal])
    y_all = np.concatenate([y_train, cal_y])
    rfm = rfm_logistic_regression().fit(X_main, y_main)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # An all-NaN column has no median.
        medians = np.nanmedian(X_main, axis=0)
    model = ChurnModel(
        version=_version(X_all, y_all, plan, config),
        horizon=float(horizon),
        train_horizon=plan.train_horizon,
        feature_names=FEATURE_NAMES,
        medians=medians,
        classifier=classifier,
        importances=_importances(held_out, X_cal, cal_y, config),
        plan=plan,
        config=config,
        training_rows=len(y_all),
        training_churn_rate=float(np.mean(y_all)),
    )
    return model, rfm


def _importances(
    booster: HistGradientBoostingClassifier, X: np.ndarray, y: np.ndarray, config: TrainingConfig
) -> dict[str, float]:
    """Permutation importance (drop in ROC AUC) on the held-out calibration snapshot."""
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        booster, X, y, scoring="roc_auc", n_repeats=3, random_state=config.random_state
    )
    # The last input, the label window, is the same for every row here.
    return {
        name: round(float(value), 5)
        for name, value in zip(FEATURE_NAMES, result.importances_mean[:-1], strict=True)
    }


# Evaluation ---------------------------------------------------------------------------------


def _curves(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, _ = roc_curve(y, p)
    grid = np.linspace(0.0, 1.0, 51)
    roc = np.interp(grid, fpr, tpr)
    frac, mean_pred = calibration_curve(y, np.clip(p, 0, 1), n_bins=10, strategy="quantile")
    return {
        "roc_fpr": [round(float(v), 4) for v in grid],
        "roc_tpr": [round(float(v), 4) for v in roc],
        "calibration_predicted": [round(float(v), 4) for v in mean_pred],
        "calibration_observed": [round(float(v), 4) for v in frac],
    }


def method_metrics(y: np.ndarray, score: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """ROC AUC and PR AUC of ``score`` (higher = more likely to churn), Brier of ``prob``."""
    return {
        "roc_auc": round(float(roc_auc_score(y, score)), 4),
        "pr_auc": round(float(average_precision_score(y, score)), 4),
        "brier": round(float(brier_score_loss(y, np.clip(prob, 0, 1))), 4),
        "curves": _curves(y, prob),
    }


def bgnbd_scores(snap: Snapshot, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD fitted on the snapshot's own history: (-expected purchases, P(no purchase))."""
    if snap.bgnbd_params is None:
        raise NotEnoughHistory("too few customers to fit BG/NBD")
    x, t_x, T = summary(snap)
    weeks = horizon / 7.0
    expected = bgnbd.expected_purchases(snap.bgnbd_params, weeks, x, t_x, T)
    quiet = bgnbd.p_no_purchase(snap.bgnbd_params, weeks, x, t_x, T)
    return -expected, quiet


def summary(snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (x, t_x, T) in weeks, recovered from the snapshot's features."""
    frequency = snap.column("frequency")
    recency = snap.column("recency_days")
    tenure = snap.column("tenure_days")
    # Day resolution, as the features count purchase days.
    first_day = np.floor(snap.cutoff - tenure)
    last_day = np.floor(snap.cutoff - recency)
    t_x = (last_day - first_day) / 7.0
    T = np.maximum((snap.cutoff - first_day) / 7.0, t_x)
    return frequency - 1, t_x, T


def evaluate(
    log: EventLog,
    *,
    cutoff: float,
    horizon: float,
    config: TrainingConfig | None = None,
    labels_complete: bool = False,
) -> dict[str, Any]:
    """The model, BG/NBD and RFM logistic regression, side by side, as of ``cutoff``.

    Customers: those with a purchase before ``cutoff``. Label: no purchase in [cutoff,
    cutoff + horizon). The model and the RFM baseline train on snapshots whose label windows
    end by ``cutoff``; BG/NBD is fitted on the history before ``cutoff``.

    Unless the caller knows the label window is over (``labels_complete``: the backtest of a
    model trained "now"), events must reach into the window's last day: a history that ends
    earlier would count customers who simply have no data yet as churned.
    """
    if not labels_complete and log.last_time < cutoff + horizon - 1.0:
        raise NotEnoughHistory(
            f"the events end {cutoff + horizon - log.last_time:.1f} days before the end of the "
            "label window: the labels would be incomplete"
        )
    model, rfm = fit_model(log, label_end=cutoff, horizon=horizon, config=config)
    snap = snapshot(log, cutoff=cutoff, horizon=model.train_horizon)
    y = churn_labels(log, snap, horizon=horizon)
    p_model = model.predict(snap.X)
    bg_score, bg_prob = bgnbd_scores(snap, horizon)
    p_rfm = rfm.predict_proba(snap.X)[:, 1]
    return {
        "customers": len(y),
        "churn_rate": round(float(np.mean(y)), 4),
        "horizon_days": horizon,
        "train_horizon_days": model.train_horizon,
        "training_cutoffs": list(model.plan.cutoffs),
        "training_rows": model.training_rows,
        "model_version": model.version,
        "bgnbd_params": snap.bgnbd_params.as_dict() if snap.bgnbd_params else None,
        "methods": {
            "model": method_metrics(y, p_model, p_model),
            "bgnbd": method_metrics(y, bg_score, bg_prob),
            "rfm_logreg": method_metrics(y, p_rfm, p_rfm),
        },
        "importances": model.importances,
    }
