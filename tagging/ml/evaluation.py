"""Offline comparison of tagging methods on one labelled catalogue (framework-free).

Owns :func:`evaluate_taggers` (every method side by side on one stratified split, with
hyperparameters chosen on a validation split), its inputs (:class:`EvaluationData`,
:func:`label_index`), the split (:func:`stratified_split`), the metrics and the TF-IDF +
logistic-regression baseline (:func:`tfidf_lr_fit`). :mod:`tagging.evaluation` reads the
catalogue and embeds the texts, then calls this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import DEFAULT_TARGET_PRECISION, auto_accept_thresholds, coverage_at_precision
from .finetune import FineTunedTagger
from .stacking import blend, choose_weights, cross_fit_meta
from .taggers import SupervisedTagger, ZeroShotTagger, f1_per_class


def topk_accuracy(proba: np.ndarray, y_true: np.ndarray, k: int) -> float:
    top = np.argsort(-proba, axis=1)[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())


def classification_metrics(proba: np.ndarray, y_true: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (over classes present in the truth) and top-3 accuracy."""
    pred = np.argmax(proba, axis=1)
    f1 = f1_per_class(y_true, pred, proba.shape[1])
    present = np.bincount(y_true, minlength=proba.shape[1]) > 0
    return {
        "accuracy": round(float((pred == y_true).mean()), 4),
        "macro_f1": round(float(np.nan_to_num(f1[present]).mean()), 4),
        "top3_accuracy": round(topk_accuracy(proba, y_true, 3), 4),
    }


def tfidf_lr_fit(
    texts: Sequence[str], targets: np.ndarray, *, c: float = 10.0, seed: int = 0
) -> Any:
    """TF-IDF over word 1-2-grams and character 2-5-grams, then a logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(C=c, max_iter=200, random_state=seed))
    model.fit(list(texts), targets)
    return model


def stratified_split(
    targets: np.ndarray, *, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes (train, test), stratified by class; a class with one row stays in train."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size: must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for cls in np.unique(targets):
        rows = rng.permutation(np.flatnonzero(targets == cls))
        n_test = round(len(rows) * test_size) if len(rows) > 1 else 0
        n_test = min(n_test, len(rows) - 1)
        test.extend(rows[:n_test])
        train.extend(rows[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def _proba_full(model: Any, x: Any, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class index 0..n-1 (classes absent from training: 0)."""
    proba = np.asarray(model.predict_proba(x), dtype=np.float64)
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(model.classes_, dtype=np.int64)] = proba
    return out


@dataclass
class EncoderVectors:
    """One encoder's vectors of the catalogue texts and of the label texts."""

    name: str
    vectors: np.ndarray
    label_vectors: np.ndarray


@dataclass
class EvaluationData:
    """One labelled catalogue: texts, vectors of those texts, label vectors, class indexes.

    ``vectors``/``label_vectors`` come from the encoder named ``encoder``; ``others`` holds
    further encoders' vectors of the same texts, so one run compares the methods on each
    encoder (their names then carry the encoder: ``knn[all-mpnet-base-v2]``) and the stacked
    ensemble can draw on all of them.
    """

    texts: list[str]
    vectors: np.ndarray
    targets: np.ndarray
    labels: list[str]
    label_vectors: np.ndarray
    encoder: str = ""
    others: Sequence[EncoderVectors] = field(default_factory=tuple)

    def encoders(self) -> list[EncoderVectors]:
        return [EncoderVectors(self.encoder, self.vectors, self.label_vectors), *self.others]


Log = Callable[[str], None]

ENSEMBLES: Mapping[str, tuple[str, ...]] = {
    "ensemble_embeddings": ("finetune", "knn"),
    "ensemble_hybrid": ("finetune", "knn", "tfidf_lr"),
}
STACK = "stacked"  # The stacked ensemble's method name (weighted average).
STACK_LR = "stacked_lr"  # The meta-learner stack: a learned log-linear pool of the members.
EMBEDDING_METHODS = ("zero_shot", "logistic", "knn", "mlp", "finetune")


def evaluate_taggers(
    data: EvaluationData,
    *,
    test_size: float,
    seed: int,
    validation_size: float = 0.1,
    # Small grids: on a shared 2-core CPU each logistic-regression fit over 134 classes takes
    # minutes. Unit-norm embeddings need a weaker penalty (larger C) than TF-IDF features.
    c_grid: Sequence[float] = (10.0, 100.0),
    tfidf_c_grid: Sequence[float] = (3.0, 30.0),
    k_grid: Sequence[int] = (10, 25),
    methods: Sequence[str] = ("zero_shot", "logistic", "knn", "mlp", "tfidf_lr", STACK),
    finetune_model_path: str | None = None,
    finetune_options: Mapping[str, Any] | None = None,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    log: Log | None = None,
) -> dict[str, Any]:
    """Every method side by side on one stratified split, on each encoder of ``data``.

    Hyperparameters (C, k, zero-shot temperature and standardisation), the stacked ensemble's
    weights and each method's auto-accept threshold (the lowest confidence reaching
    ``target_precision``) are chosen on a validation split carved out of the training rows;
    the test rows are scored once, at the end, by models refitted on the whole training split.
    Each method reports accuracy, macro-F1, top-3 accuracy and ``coverage``: the share of test
    rows its validation threshold accepts, with the precision reached on them.
    """
    say = log or (lambda message: None)
    n_classes = len(data.labels)
    y = data.targets
    train, test = stratified_split(y, test_size=test_size, seed=seed)
    sub_rows, val_rows = stratified_split(y[train], test_size=validation_size, seed=seed + 1)
    sub, val = train[sub_rows], train[val_rows]
    if not len(val):
        # Too few rows for a validation split (tiny catalogues): choose on the training rows.
        sub = val = train
    results: dict[str, Any] = {}
    chosen: dict[str, Any] = {}
    val_proba: dict[str, np.ndarray] = {}
    test_proba: dict[str, np.ndarray] = {}
    encoders = data.encoders()
    several = len(encoders) > 1

    def report(name: str, encoder: str, proba: np.ndarray, validation: np.ndarray | None) -> None:
        test_proba[name] = proba
        metrics: dict[str, Any] = classification_metrics(proba, y[test])
        metrics["encoder"] = encoder
        if validation is not None:
            val_proba[name] = validation
            threshold = auto_accept_thresholds(validation, y[val], target=target_precision)
            reached = coverage_at_precision(proba, y[test], threshold.global_threshold)
            metrics["coverage"] = {
                "target_precision": target_precision,
                "threshold": _rounded(threshold.global_threshold),
                **reached,
            }
        results[name] = metrics
        say(f"{name}: {metrics}")

    for enc in encoders:
        x = np.asarray(enc.vectors, dtype=np.float32)

        def named(method: str, _enc: EncoderVectors = enc) -> str:
            return f"{method}[{_enc.name}]" if several else method

        if "zero_shot" in methods:
            best: tuple[float, bool] | None = None
            for standardise in (False, True):
                zs = ZeroShotTagger(enc.label_vectors, standardise=standardise).fit(x)
                zs.calibrate(x[sub], y[sub])
                accuracy = float((np.argmax(zs.logits(x[val]), axis=1) == y[val]).mean())
                say(f"{named('zero-shot')} standardise={standardise}: validation {accuracy:.4f}")
                if best is None or accuracy > best[0]:
                    best = (accuracy, standardise)
            assert best is not None
            zs = ZeroShotTagger(enc.label_vectors, standardise=best[1]).fit(x)
            zs.calibrate(x[sub], y[sub])
            validation = zs.predict_proba(x[val])
            zs.calibrate(x[train], y[train])
            chosen[named("zero_shot")] = {"standardise": best[1], "temperature": zs.temperature}
            report(named("zero_shot"), enc.name, zs.predict_proba(x[test]), validation)
            # The uncalibrated, unstandardised cosine, for honesty about what standardising buys.
            raw = ZeroShotTagger(enc.label_vectors, standardise=False).fit(x)
            report(named("zero_shot_raw_cosine"), enc.name, raw.predict_proba(x[test]), None)

        def pick(
            name: str, grid: Sequence[Any], build: Callable[[Any], Any], _x: np.ndarray = x
        ) -> tuple[Any, np.ndarray]:
            """The grid value with the best validation accuracy, and its validation proba."""
            scores, probas = [], []
            for value in grid:
                proba = build(value).fit(_x[sub], y[sub]).predict_proba(_x[val])
                accuracy = float((np.argmax(proba, axis=1) == y[val]).mean())
                say(f"{name} {value}: validation accuracy {accuracy:.4f}")
                scores.append(accuracy)
                probas.append(proba)
            best_at = int(np.argmax(scores))
            return grid[best_at], probas[best_at]

        if "logistic" in methods:
            c, validation = pick(
                named("logistic C"), c_grid, lambda v: SupervisedTagger(n_classes, c=v)
            )
            model = SupervisedTagger(n_classes, c=c).fit(x[train], y[train], seed=seed)
            chosen[named("logistic")] = {"C": c}
            report(named("logistic"), enc.name, model.predict_proba(x[test]), validation)

        if "knn" in methods:
            k, validation = pick(
                named("knn k"), k_grid, lambda v: SupervisedTagger(n_classes, method="knn", k=v)
            )
            model = SupervisedTagger(n_classes, method="knn", k=k).fit(x[train], y[train])
            chosen[named("knn")] = {"k": k}
            report(named("knn"), enc.name, model.predict_proba(x[test]), validation)

        if "mlp" in methods:
            mlp = _mlp(seed).fit(x[sub], y[sub])
            validation = _proba_full(mlp, x[val], n_classes)
            mlp = _mlp(seed).fit(x[train], y[train])
            chosen[named("mlp")] = {"hidden": 1024, "epochs": int(mlp.n_iter_)}
            report(named("mlp"), enc.name, _proba_full(mlp, x[test], n_classes), validation)

    if "finetune" in methods:
        if finetune_model_path is None:
            raise ValueError("finetune: needs the model directory (finetune_model_path)")
        texts_all = list(data.texts)
        tuned = FineTunedTagger(
            model_path=finetune_model_path,
            n_classes=n_classes,
            seed=seed,
            log=say,
            **dict(finetune_options or {}),
        )
        # Trained on the training rows minus the validation rows, which pick the best epoch.
        tuned.fit(
            [texts_all[i] for i in sub],
            y[sub],
            validation=([texts_all[i] for i in val], y[val]) if len(val) else None,
        )
        chosen["finetune"] = {
            "tune_layers": len(tuned.top),
            "epochs": tuned.epochs,
            "best_epoch": tuned.best_epoch,
        }
        report(
            "finetune",
            Path(finetune_model_path).name,
            tuned.predict_proba([texts_all[i] for i in test]),
            tuned.predict_proba([texts_all[i] for i in val]),
        )

    if "tfidf_lr" in methods:
        texts = np.array(data.texts, dtype=object)
        scores, probas = [], []
        for value in tfidf_c_grid:
            model = tfidf_lr_fit(texts[sub], y[sub], c=value, seed=seed)
            proba = _proba_full(model, texts[val], n_classes)
            accuracy = float((np.argmax(proba, axis=1) == y[val]).mean())
            say(f"tfidf_lr C {value}: validation accuracy {accuracy:.4f}")
            scores.append(accuracy)
            probas.append(proba)
        best_at = int(np.argmax(scores))
        model = tfidf_lr_fit(texts[train], y[train], c=tfidf_c_grid[best_at], seed=seed)
        chosen["tfidf_lr"] = {"C": tfidf_c_grid[best_at]}
        report("tfidf_lr", "none", _proba_full(model, texts[test], n_classes), probas[best_at])

    # Equal-weight averages of the members' probabilities (issue 6's ensembles).
    for name, members in ENSEMBLES.items():
        if all(member in test_proba for member in members):
            report(
                name,
                "+".join(sorted({results[m]["encoder"] for m in members})),
                np.mean([test_proba[member] for member in members], axis=0),
                np.mean([val_proba[member] for member in members], axis=0),
            )
            chosen[name] = {"members": list(members), "weights": "equal"}

    stack_members = [n for n in val_proba if n not in ENSEMBLES]
    if STACK in methods and val_proba:
        weights = choose_weights(val_proba, y[val], candidates=stack_members)
        chosen[STACK] = {"weights": weights, "chosen_on": "validation"}
        report(
            STACK,
            "+".join(sorted({results[m]["encoder"] for m in weights})),
            blend(test_proba, weights),
            blend(val_proba, weights),
        )

    if STACK_LR in methods and stack_members:
        # Fitted on the validation rows (the members there were fitted without them), its
        # per-tag penalty chosen there by cross-fitting; its validation probabilities are
        # out-of-fold, so the auto-accept threshold is chosen on rows it never learned from. On
        # the test rows it reads the members refitted on every training row, as the weighted
        # stack does.
        meta, oof = cross_fit_meta(
            {m: val_proba[m] for m in stack_members}, y[val], n_tags=n_classes, seed=seed
        )
        chosen[STACK_LR] = {
            "per_tag_l2": meta.per_tag if np.isfinite(meta.per_tag) else "none",
            "weights": dict(zip(stack_members, np.round(meta.weights, 4).tolist(), strict=True)),
            "members": list(stack_members),
            "chosen_on": "validation (5-fold cross-fitted)",
        }
        report(
            STACK_LR,
            "+".join(sorted({results[m]["encoder"] for m in stack_members})),
            meta.predict_proba(test_proba),
            oof,
        )

    per_class = np.bincount(y[train], minlength=n_classes)
    return {
        "methods": results,
        "hyperparameters": chosen,
        "split": {
            "train": len(train),
            "test": len(test),
            "validation_within_train": len(val),
            "classes": n_classes,
            "test_size": test_size,
            "seed": seed,
        },
        "train_examples_per_class": {
            "min": int(per_class.min()) if n_classes else 0,
            "median": float(np.median(per_class)) if n_classes else 0.0,
            "max": int(per_class.max()) if n_classes else 0,
            "by_class": {data.labels[i]: int(n) for i, n in enumerate(per_class)},
        },
    }


def _rounded(value: float) -> float | None:
    """A threshold for JSON: None for "never" (no confidence reaches the target)."""
    return None if not np.isfinite(value) else round(float(value), 6)


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    # Early stopping holds out its own 10% of the fitting rows: never the test rows.
    return MLPClassifier(
        hidden_layer_sizes=(1024,),
        alpha=1e-4,
        batch_size=256,
        learning_rate_init=1e-3,
        max_iter=60,
        early_stopping=True,
        n_iter_no_change=4,
        random_state=seed,
    )


def label_index(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted distinct labels and each row's index into them."""
    names = sorted(set(labels))
    position: Mapping[str, int] = {name: i for i, name in enumerate(names)}
    return names, np.array([position[label] for label in labels], dtype=np.int64)
