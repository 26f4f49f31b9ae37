import math

import numpy as np
import pytest

from recommender.ml.interest import (
    _close,
    _row_norms,
    event_vector_weights,
    interest_scores,
    interest_vector,
    multi_interest,
)

DAY = 86_400.0
WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.6, "click": 0.3, "view": 0.2}


def test_seed_formula_on_a_hand_computed_example():
    # given: bought v1 = (1, 0) and viewed v2 = (0, 1) just now
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    weights = event_vector_weights(
        event_types=["purchase", "view"],
        timestamps=[100.0, 100.0],
        behaviour_weights=WEIGHTS,
        half_life_days=30.0,
        now=100.0,
    )
    # when
    q = interest_vector(vectors, weights)
    # then: q_u = 1*v1 + 0.2*v2 = (1, 0.2); cos with (0.6, 0.8) = 0.76 / sqrt(1.04)
    assert weights.tolist() == [1.0, 0.2]
    assert q is not None
    assert q.tolist() == pytest.approx([1 / math.sqrt(1.04), 0.2 / math.sqrt(1.04)], abs=1e-6)
    score = interest_scores([_one(q)], np.array([[0.6, 0.8]], dtype=np.float32))
    assert score.tolist() == pytest.approx([0.76 / math.sqrt(1.04)], abs=1e-6)


def test_behaviour_weights_and_time_decay_multiply():
    weights = event_vector_weights(
        event_types=["purchase", "add_to_cart", "click", "view", "search"],
        timestamps=[0.0, 30 * DAY, 60 * DAY, 60 * DAY, 60 * DAY],
        behaviour_weights=WEIGHTS,
        half_life_days=30.0,
        now=60 * DAY,
    )
    # Two half-lives, one half-life, then fresh; "search" has no configured weight here.
    assert weights.tolist() == pytest.approx([0.25, 0.3, 0.3, 0.2, 0.0])


def test_multi_interest_keeps_two_topics_apart():
    ink = np.array([[1.0, 0.0, 0.0], [0.96, 0.28, 0.0]])
    coffee = np.array([[0.0, 0.0, 1.0], [0.0, 0.28, 0.96]])
    vectors = np.vstack([ink, coffee])
    interests = multi_interest(vectors, np.array([1.0, 1.0, 1.0, 0.5]), n_interests=3)
    assert [i.members for i in interests] == [(0, 1), (2, 3)]
    assert [round(i.weight, 4) for i in interests] == [0.5714, 0.4286]
    # Centroids (1.96, 0.28, 0)/sqrt(3.92) and (0, 0.14, 1.48)/sqrt(2.21): each topic's item
    # scores ~0.99, where the single average of all four would give ~0.66 and ~0.56.
    scores = interest_scores(interests, np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    expected = [1.96 / math.sqrt(3.92), 1.48 / math.sqrt(2.21)]
    assert scores.tolist() == pytest.approx(expected, abs=1e-6)


def test_no_events_give_no_interest():
    assert interest_vector(np.empty((0, 2)), np.empty(0)) is None
    assert multi_interest(np.empty((0, 2)), np.empty(0), n_interests=2) == []


def _one(vector):
    from recommender.ml.interest import Interest

    return Interest(vector=vector, weight=1.0, members=(0,))


def test_the_row_norms_and_the_convergence_check_are_numpy_s_own_to_the_bit():
    # multi_interest's shortcuts for np.linalg.norm(x, axis=1) and np.allclose: the interests
    # (and so the served lists) must not move by a float.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(117, 384)) * rng.uniform(1e-3, 10, size=(117, 1))
    assert np.array_equal(_row_norms(x), np.linalg.norm(x, axis=1))
    near = x * (1 + 5e-6)  # Within rtol 1e-5 of x.
    far = x * (1 + 5e-5)
    tiny = np.zeros_like(x) + 5e-9  # Within atol 1e-8 of 0.
    for a, b in ((x, x), (near, x), (far, x), (tiny, np.zeros_like(x)), (x, near)):
        assert _close(a, b) is bool(np.allclose(a, b))
    assert [_close(a, b) for a, b in ((near, x), (far, x), (tiny, np.zeros_like(x)))] == [
        True, False, True,
    ]  # fmt: skip
