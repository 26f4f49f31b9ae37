"""A churn model saved as data, not as a pickle: a JSON manifest plus a ``.npz`` of arrays.

The manifest (the build's main file, ``model-<pk>-<hex>.json``) holds the version, the horizons,
the training plan and configuration, the feature names, importances, the calibration map and
the booster's baseline; the arrays file beside it (``model-<pk>-<hex>.npz``, read with
``allow_pickle=False``) holds the feature medians and every tree's nodes. Both are written with
the one atomic writer (:mod:`recommender.ml.files`), the arrays first, so a manifest never names
arrays that are not complete. Loading executes nothing from the files.

A loaded model predicts exactly what the trained one does: the trees are walked as
scikit-learn's predictor walks them on raw (unbinned) inputs (a missing value goes the side the
node learned, otherwise left when ``x <= threshold``), their values are added to the baseline in
the same order, and the calibration map (Platt's sigmoid, or isotonic interpolation) is applied
to that log-odds as scikit-learn applies it. Framework-free: numpy and scipy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from recommender.ml.files import atomic_write

from .model import ARTIFACT_FORMAT, ChurnModel, PlattBooster, TrainingConfig, TrainingPlan

_TREE_ARRAYS = ("offsets", "feature", "threshold", "missing_left", "left", "right", "leaf", "value")


def arrays_path(main: Path) -> Path:
    """The arrays file beside a manifest: same base name (the build's file set)."""
    return main.with_suffix(".npz")


@dataclass(frozen=True)
class Trees:
    """A gradient-boosted binary classifier's trees, flattened: tree ``t`` owns the nodes from
    ``offsets[t]`` to ``offsets[t + 1]``; ``left``/``right`` index within the tree."""

    baseline: float
    offsets: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray

    @classmethod
    def of(cls, booster: Any) -> Trees:
        """The trees of a fitted ``HistGradientBoostingClassifier`` (binary, numeric inputs)."""
        if booster.n_trees_per_iteration_ != 1:
            raise ValueError("only a binary classifier's trees can be saved")
        if getattr(booster, "is_categorical_", None) is not None:
            raise ValueError("categorical inputs are not supported")
        nodes = [predictors[0].nodes for predictors in booster._predictors]
        joined = np.concatenate(nodes) if nodes else np.zeros(0, dtype=np.float64)
        sizes = [len(n) for n in nodes]
        return cls(
            baseline=float(np.asarray(booster._baseline_prediction).ravel()[0]),
            offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            feature=joined["feature_idx"].astype(np.int64),
            threshold=joined["num_threshold"].astype(np.float64),
            missing_left=joined["missing_go_to_left"].astype(bool),
            left=joined["left"].astype(np.int64),
            right=joined["right"].astype(np.int64),
            leaf=joined["is_leaf"].astype(bool),
            value=joined["value"].astype(np.float64),
        )

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The log-odds: the baseline plus each tree's leaf value, tree by tree."""
        X = np.asarray(X, dtype=np.float64)
        raw = np.full(len(X), self.baseline)
        rows = np.arange(len(X))
        for t in range(len(self.offsets) - 1):
            start = self.offsets[t]
            node = np.zeros(len(X), dtype=np.int64)
            while True:
                here = start + node
                inner = ~self.leaf[here]
                if not inner.any():
                    break
                at = here[inner]
                x = X[rows[inner], self.feature[at]]
                go_left = np.where(np.isnan(x), self.missing_left[at], x <= self.threshold[at])
                node[inner] = np.where(go_left, self.left[at], self.right[at])
            raw += self.value[start + node]
        return raw


@dataclass(frozen=True)
class SavedClassifier:
    """The calibrated classifier of a loaded model: trees, then Platt's sigmoid or an isotonic
    map of their log-odds."""

    trees: Trees
    calibration: dict[str, Any]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = self.trees.decision_function(X)
        if self.calibration["method"] == "sigmoid":
            coef = np.asarray(self.calibration["coef"], dtype=np.float64)
            intercept = np.asarray(self.calibration["intercept"], dtype=np.float64)
            p = expit((raw.reshape(-1, 1) @ coef.T + intercept).ravel())
        else:
            x = np.asarray(self.calibration["x"], dtype=np.float64)
            y = np.asarray(self.calibration["y"], dtype=np.float64)
            p = np.interp(raw, x, y)  # Clipped to the ends, as fitted (out_of_bounds="clip").
            p[(p > 1.0) & (p <= 1.0 + 1e-5)] = 1.0
        return np.column_stack([1.0 - p, p])


def _parts(classifier: Any) -> tuple[Trees, dict[str, Any]]:
    if isinstance(classifier, SavedClassifier):
        return classifier.trees, classifier.calibration
    if isinstance(classifier, PlattBooster):
        platt = classifier.platt
        return Trees.of(classifier.booster), {
            "method": "sigmoid",
            "coef": platt.coef_.tolist(),
            "intercept": platt.intercept_.tolist(),
        }
    # CalibratedClassifierCV(FrozenEstimator(booster), method="isotonic") fitted once.
    calibrated = classifier.calibrated_classifiers_[0]
    isotonic = calibrated.calibrators[0]
    return Trees.of(calibrated.estimator.estimator), {
        "method": "isotonic",
        "x": isotonic.X_thresholds_.tolist(),
        "y": isotonic.y_thresholds_.tolist(),
    }


def model_save(model: ChurnModel, main: Path) -> None:
    """Write ``model`` as the manifest ``main`` and the arrays file beside it."""
    trees, calibration = _parts(model.classifier)
    with atomic_write(arrays_path(main)) as handle:
        np.savez(
            handle,
            medians=np.asarray(model.medians, dtype=np.float64),
            offsets=trees.offsets,
            feature=trees.feature,
            threshold=trees.threshold,
            missing_left=trees.missing_left,
            left=trees.left,
            right=trees.right,
            leaf=trees.leaf,
            value=trees.value,
        )
    manifest = {
        "format": ARTIFACT_FORMAT,
        "version": model.version,
        "horizon": model.horizon,
        "train_horizon": model.train_horizon,
        "feature_names": list(model.feature_names),
        "importances": model.importances,
        "plan": asdict(model.plan),
        "config": asdict(model.config),
        "training_rows": model.training_rows,
        "training_churn_rate": model.training_churn_rate,
        "extra": model.extra,
        "baseline": trees.baseline,
        "calibration": calibration,
    }
    with atomic_write(main) as handle:
        handle.write(json.dumps(manifest, indent=1, sort_keys=True).encode())


def model_load(main: Path) -> ChurnModel:
    """The model saved at ``main``; ValueError for a file of another format (a pickle of an
    earlier version included), so the caller trains anew."""
    try:
        manifest = json.loads(Path(main).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a churn model artifact of this version") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARTIFACT_FORMAT:
        raise ValueError("not a churn model artifact of this version")
    with np.load(arrays_path(Path(main)), allow_pickle=False) as arrays:
        medians = arrays["medians"]
        trees = Trees(baseline=float(manifest["baseline"]), **{f: arrays[f] for f in _TREE_ARRAYS})
    plan = manifest["plan"]
    config = manifest["config"]
    return ChurnModel(
        version=manifest["version"],
        horizon=float(manifest["horizon"]),
        train_horizon=float(manifest["train_horizon"]),
        feature_names=tuple(manifest["feature_names"]),
        medians=medians,
        classifier=SavedClassifier(trees, manifest["calibration"]),
        importances=manifest["importances"],
        plan=TrainingPlan(
            label_end=plan["label_end"],
            horizon=plan["horizon"],
            train_horizon=plan["train_horizon"],
            cutoffs=tuple(plan["cutoffs"]),
            extra=tuple((window, tuple(cutoffs)) for window, cutoffs in plan["extra"]),
        ),
        config=TrainingConfig(**{**config, "extra_horizons": tuple(config["extra_horizons"])}),
        training_rows=int(manifest["training_rows"]),
        training_churn_rate=float(manifest["training_churn_rate"]),
        format=ARTIFACT_FORMAT,
        extra=manifest["extra"],
    )
