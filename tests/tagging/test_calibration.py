"""Auto-accept thresholds and the stacked ensemble's weights (framework-free)."""

import numpy as np

from tagging import ml


def test_the_threshold_is_the_lowest_confidence_whose_upper_set_reaches_the_target():
    # Sorted by confidence: right, right, wrong, right, right, wrong, wrong.
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    correct = np.array([1, 1, 0, 1, 1, 0, 0], dtype=bool)

    # Measured shares (z=0). At 0.5: 4 of 5 right (0.8); at 0.4: 4 of 6 (0.67).
    assert ml.precision_threshold(confidence, correct, target=0.8, z=0) == 0.5
    assert ml.precision_threshold(confidence, correct, target=0.95, z=0) == 0.8
    assert ml.precision_threshold(confidence, correct, target=0.95, z=0, min_support=3) == ml.NEVER
    # With the default margin (Wilson lower bound, z 1.645): 2 right of 2 shows 0.42, 4 of 5
    # 0.44, 4 of 6 0.35.
    assert ml.precision_threshold(confidence, correct, target=0.43) == 0.5
    assert ml.precision_threshold(confidence, correct, target=0.42) == 0.5
    assert ml.precision_threshold(confidence, correct, target=0.44) == ml.NEVER


def test_tied_confidences_are_all_in_or_all_out():
    confidence = np.array([0.9, 0.7, 0.7, 0.7])
    correct = np.array([1, 1, 1, 0], dtype=bool)

    assert ml.precision_threshold(confidence, correct, target=0.9, z=0) == 0.9


def test_a_threshold_chosen_on_reviewed_rows_reaches_its_precision_on_new_rows():
    # A fixture with known labels: 40 tags; each row's top tag is right with probability equal
    # to its confidence (a calibrated model). 10,000 reviewed rows choose the thresholds; they
    # are checked on 200,000 new rows (many, so the check itself is precise).
    rng = np.random.default_rng(7)
    n, tags = 210_000, 40
    truth = rng.integers(0, tags, n)
    confidence = rng.uniform(0.3, 1.0, n)
    right = rng.uniform(size=n) < confidence
    predicted = np.where(right, truth, (truth + rng.integers(1, tags, n)) % tags)
    proba = np.zeros((n, tags), dtype=np.float32)
    proba[np.arange(n), predicted] = confidence
    reviewed, new = np.arange(10_000), np.arange(10_000, n)

    chosen = ml.auto_accept_thresholds(proba[reviewed], truth[reviewed], target=0.95)
    reached = ml.coverage_at_precision(proba[new], truth[new], chosen.global_threshold)
    per_tag = ml.coverage_at_precision(proba[new], truth[new], chosen.per_tag)

    # Precision at threshold t is (1 + t) / 2 here: 0.95 needs t >= 0.9.
    assert round(chosen.global_threshold, 4) == 0.9275
    assert reached == {"coverage": 0.1024, "precision": 0.9648, "covered": 20_479}
    assert per_tag == {"coverage": 0.099, "precision": 0.9635, "covered": 19_807}


def test_tags_with_few_reviews_fall_back_to_the_global_threshold():
    # 63 of 63 right shows 95% precision (Wilson lower bound 0.959), 60 of 60 too (0.957).
    proba = np.array([[0.9, 0.1]] * 60 + [[0.2, 0.8]] * 3)
    truth = np.array([0] * 60 + [1] * 3)

    chosen = ml.auto_accept_thresholds(proba, truth, target=0.95)

    assert chosen.global_threshold == 0.8
    assert list(chosen.own) == [True, False]
    assert list(chosen.per_tag) == [0.9, 0.8]
    assert list(chosen.support) == [60, 3]


def test_stacking_weights_favour_the_member_that_is_right_where_the_other_is_wrong():
    y = np.array([0, 1, 0, 1])
    good = np.array([[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.45, 0.55]])
    bad = np.array([[0.2, 0.8], [0.8, 0.2], [0.6, 0.4], [0.6, 0.4]])

    weights = ml.choose_weights({"bad": bad, "good": good}, y)

    assert weights == {"good": 1.0}
    assert np.allclose(ml.blend({"bad": bad, "good": good}, weights), good)


def _biased_member() -> tuple[np.ndarray, np.ndarray]:
    """30 rows, 10 per tag; the member is right on tags 0 and 1 and always says tag 0 on tag
    2's rows, but less surely (0.6) than on tag 0's (0.9): a fact a weighted average of
    probabilities cannot use and a meta-learner on log-probabilities can."""
    y = np.repeat(np.arange(3), 10)
    pattern = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.6, 0.0, 0.4]])
    return pattern[y], y


def test_the_meta_learner_corrects_a_member_that_a_weighted_average_cannot():
    biased, y = _biased_member()
    probas = {"biased": biased, "flat": np.full((30, 3), 1 / 3)}

    weights = ml.choose_weights(probas, y)
    meta, oof = ml.cross_fit_meta(probas, y, n_tags=3, seed=0)

    assert weights == {"biased": 1.0}
    assert float((np.argmax(ml.blend(probas, weights), axis=1) == y).mean()) == 20 / 30
    # Every row scored out of fold, and right; refitted on all rows, it is right on new rows.
    assert np.argmax(oof, axis=1).tolist() == y.tolist()
    assert meta.members == ("biased", "flat")
    # Every penalty is right on every row out of fold; the weakest has the lowest log-loss.
    assert meta.per_tag == 1e-3
    new = {"biased": biased[[0, 10, 20]], "flat": np.full((3, 3), 1 / 3)}
    assert np.argmax(meta.predict_proba(new), axis=1).tolist() == [0, 1, 2]
    assert meta.predict_proba(new).shape == (3, 3)


def test_meta_learner_probabilities_are_out_of_fold():
    from tagging.ml.stacking import _folds

    biased, y = _biased_member()
    probas = {"biased": biased, "flat": np.full((30, 3), 1 / 3)}

    meta, oof = ml.cross_fit_meta(probas, y, n_tags=3, seed=0)

    # Each fold's rows are scored by the pool fitted on the other folds, with the chosen penalty.
    fold = _folds(y, 5, seed=0)
    for f in range(5):
        out = fold == f
        alone = ml.MetaStacker(("biased", "flat"), 3, per_tag=meta.per_tag).fit(
            {m: p[~out] for m, p in probas.items()}, y[~out]
        )
        assert np.allclose(oof[out], alone.predict_proba({m: p[out] for m, p in probas.items()}))
    assert np.allclose(oof.sum(axis=1), 1.0)


def test_meta_learner_folds_are_stratified():
    y = np.repeat(np.arange(3), [10, 5, 1])
    from tagging.ml.stacking import _folds

    fold = _folds(y, 5, seed=0)

    assert [np.bincount(fold[y == c], minlength=5).tolist() for c in range(3)] == [
        [2, 2, 2, 2, 2],
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0],
    ]
