"""The framework-free tagging models on small hand-made vectors."""

import numpy as np
import pytest

from tagging import ml


def _unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_tag_text_reads_the_leaf_then_its_path_then_the_description():
    assert ml.tag_text("dairy eggs/yogurt") == "yogurt (dairy eggs)"
    assert ml.tag_text("mugs", "  Cups with\nhandles. ") == "mugs: Cups with handles."
    assert ml.tag_text("a/b/c") == "c (a b)"
    with pytest.raises(ValueError, match="tag name is empty"):
        ml.tag_text(" / ")


def test_suggest_keeps_at_most_top_k_above_the_threshold():
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.25, 0.55]])

    got = ml.suggest(proba, threshold=0.25, top_k=2)

    assert [(s.row, s.tag, s.confidence) for s in got] == [
        (0, 0, 0.6),
        (0, 1, 0.3),
        (1, 2, 0.55),
        (1, 1, 0.25),
    ]
    assert [(s.row, s.tag) for s in ml.suggest(proba, threshold=0.5, top_k=3)] == [(0, 0), (1, 2)]


@pytest.mark.parametrize(
    ("threshold", "top_k", "message"),
    [(1.5, 1, "threshold: must be within"), (0.5, 0, "top_k: must be >= 1")],
)
def test_suggest_refuses_bad_bounds(threshold, top_k, message):
    with pytest.raises(ValueError, match=message):
        ml.suggest(np.ones((1, 2)) / 2, threshold=threshold, top_k=top_k)


def test_zero_shot_standardisation_removes_a_tag_that_is_near_everything():
    # Tag 0 sits near every product (a "hub"); tag 1 only near product 2.
    tags = _unit([1, 1, 0], [0, 0, 1])
    products = _unit([1, 1, 0.2], [1, 1, 0.1], [1, 1, 1.2])

    raw = ml.ZeroShotTagger(tags, standardise=False).fit(products)
    standardised = ml.ZeroShotTagger(tags).fit(products)

    assert np.argmax(raw.logits(products), axis=1).tolist() == [0, 0, 0]
    assert np.argmax(standardised.logits(products), axis=1).tolist() == [0, 0, 1]


def test_the_temperature_fit_sharpens_when_the_argmax_is_always_right():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    targets = np.array([0, 1, 0])

    assert ml.fit_temperature(logits, targets) == pytest.approx(0.02)
    # When the truth disagrees half the time, a flat distribution is the likeliest.
    assert ml.fit_temperature(logits, np.array([0, 0, 1])) == pytest.approx(5.0)


def test_supervised_tagger_maps_classes_back_to_tag_columns_and_ignores_background():
    x = _unit([1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9])
    targets = np.array([2, 2, -1, -1])  # Tag column 2, and two rejected-only products.

    for method in ("logistic", "knn"):
        proba = ml.SupervisedTagger(4, method=method, k=2).fit(x, targets).predict_proba(x)

        assert proba.shape == (4, 4)
        assert proba[:, [0, 1, 3]].tolist() == [[0, 0, 0]] * 4
        assert (proba[:2, 2] > 0.5).tolist() == [True, True]
        assert (proba[2:, 2] < 0.5).tolist() == [True, True]


def test_knn_votes_are_weighted_by_cosine():
    train = _unit([1, 0], [0.8, 0.6], [0, 1])
    proba = ml.knn_proba(train, np.array([0, 1, 1]), _unit([1, 0]), classes=np.array([0, 1]), k=2)

    # Neighbours: itself (cos 1, class 0) and [0.8, 0.6] (cos 0.8, class 1).
    assert proba[0].tolist() == pytest.approx([1.000001 / 1.800002, 0.800001 / 1.800002])


def test_per_tag_winner_needs_a_held_out_example_and_a_better_f1():
    y = np.array([0, 0, 1, 1])
    zero_shot = np.array([0, 1, 1, 1])  # F1: tag 0 0.667, tag 1 0.8
    supervised = np.array([0, 0, 1, 0])  # F1: tag 0 0.8, tag 1 0.667

    assert ml.per_tag_winner(y, zero_shot, supervised, 3).tolist() == [True, False, False]


def test_combine_takes_each_tags_winner_and_renormalises():
    zs = np.array([[0.5, 0.5]])
    sup = np.array([[0.9, 0.1]])

    mixed = ml.combine(zs, sup, np.array([True, False]))

    assert mixed[0].tolist() == pytest.approx([0.9 / 1.4, 0.5 / 1.4])
    assert ml.combine(zs, None, np.array([True, False])) is zs


def test_stratified_split_keeps_every_class_in_train_and_is_seeded():
    targets = np.array([0] * 10 + [1] * 5 + [2])

    train, test = ml.stratified_split(targets, test_size=0.2, seed=0)

    assert sorted(np.bincount(targets[test], minlength=3).tolist()) == [0, 1, 2]
    assert np.bincount(targets[train], minlength=3).tolist() == [8, 4, 1]
    again = ml.stratified_split(targets, test_size=0.2, seed=0)
    assert (again[0].tolist(), again[1].tolist()) == (train.tolist(), test.tolist())


def test_classification_metrics():
    proba = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    y = np.array([0, 1, 2, 1])

    # Predicted 0, 0, 2, 2: accuracy 0.5; F1 per class 0.667, 0, 0.667; top-3 always right.
    assert ml.classification_metrics(proba, y) == {
        "accuracy": 0.5,
        "macro_f1": 0.4444,
        "top3_accuracy": 1.0,
    }


def test_evaluate_taggers_reports_every_method_on_separable_data():
    rng = np.random.default_rng(0)
    centres = _unit([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0])
    targets = np.repeat(np.arange(3), 30)
    vectors = centres[targets] + rng.normal(0, 0.05, (90, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = ["apple", "bread", "candle"]
    data = ml.EvaluationData(
        texts=[f"{words[t]} item {i}" for i, t in enumerate(targets)],
        vectors=vectors,
        targets=targets,
        labels=words,
        label_vectors=centres,
    )

    report = ml.evaluate_taggers(
        data,
        test_size=0.2,
        seed=0,
        methods=("zero_shot", "logistic", "knn", "tfidf_lr", "stacked", "stacked_lr"),
    )

    assert {name: m["accuracy"] for name, m in report["methods"].items()} == {
        "zero_shot": 1.0,
        "zero_shot_raw_cosine": 1.0,
        "logistic": 1.0,
        "knn": 1.0,
        "tfidf_lr": 1.0,
        "stacked": 1.0,
        "stacked_lr": 1.0,
    }
    # The meta-learner reads every member with validation probabilities (not the raw cosine).
    assert report["hyperparameters"]["stacked_lr"]["members"] == [
        "zero_shot",
        "logistic",
        "knn",
        "tfidf_lr",
    ]
    assert report["split"]["train"] + report["split"]["test"] == 90
    assert report["train_examples_per_class"]["by_class"] == {
        "apple": 24,
        "bread": 24,
        "candle": 24,
    }
