import numpy as np
import pytest

from recommender.ml.collaborative import EASE, CoOccurrence, ItemKNN, Popularity, top_k
from recommender.ml.interactions import (
    decay,
    interaction_matrix,
    interactions_from_records,
)

DAY = 86_400.0
WEIGHTS = {"purchase": 1.0, "view": 0.25}


def _interactions():
    # Customers 1 and 2 bought products 10 and 11 together; customer 3 bought 11 and 12;
    # customer 3 also viewed 10.
    return interactions_from_records(
        user_ids=[1, 1, 2, 2, 3, 3, 3],
        item_ids=[10, 11, 10, 11, 11, 12, 10],
        event_types=["purchase"] * 6 + ["view"],
        timestamps=[0.0, 0.0, 10 * DAY, 10 * DAY, 20 * DAY, 20 * DAY, 30 * DAY],
        catalogue_ids=[10, 11, 12, 13],
    )


def test_decay_halves_per_half_life():
    assert decay(np.array([0.0, 10 * DAY, 20 * DAY]), now=20 * DAY, half_life_days=10).tolist() == [
        0.25,
        0.5,
        1.0,
    ]


def test_interaction_matrix_applies_behaviour_weights_and_decay():
    inter = _interactions()
    matrix = interaction_matrix(
        inter, behaviour_weights=WEIGHTS, half_life_days=10.0, now=30 * DAY
    ).toarray()
    # Customer 3: product 10 viewed now (0.25), 11 and 12 bought one half-life ago (0.5).
    assert matrix[2].tolist() == [0.25, 0.5, 0.5, 0.0]
    assert matrix[0].tolist() == [0.125, 0.125, 0.0, 0.0]
    strongest = interaction_matrix(inter, behaviour_weights=WEIGHTS, aggregate="max").toarray()
    assert strongest[2].tolist() == [0.25, 1.0, 1.0, 0.0]


def test_popularity_decays_and_trending_compares_recent_with_long_run():
    pop = Popularity(half_life_days=10.0, window_days=7.0).fit(
        _interactions(), behaviour_weights=WEIGHTS, now=30 * DAY
    )
    assert pop.scores.tolist() == pytest.approx([0.125 + 0.25 + 0.25, 0.125 + 0.25 + 0.5, 0.5, 0])
    # Only the view of product 10 is in the last week: (0.25 + 1) / (expected + 1) * log(1.25).
    assert pop.top(2, trending=True).tolist() == [0]
    assert pop.top(3).tolist() == [1, 0, 2]


def test_ease_recovers_items_bought_by_similar_customers():
    inter = _interactions()
    matrix = interaction_matrix(inter, behaviour_weights={"purchase": 1.0}, aggregate="max")
    ease = EASE(l2=0.5).fit(matrix)
    assert ease.weights.shape == (4, 4)
    assert np.diag(ease.weights).tolist() == [0, 0, 0, 0]
    scores = ease.score(np.array([1.0, 0.0, 0.0, 0.0]))
    # Whoever bought 10 bought 11 too; 12 was bought only with 11, so EASE weighs it negative.
    assert top_k(scores, 1, exclude=np.array([0])).tolist() == [1]
    assert scores[2] < 0 < scores[1]


def test_ease_refuses_catalogues_above_its_dense_limit():
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="20001 items exceed the dense limit of 20000"):
        EASE().fit(sp.csr_matrix((1, EASE.MAX_ITEMS + 1), dtype=np.float32))


def test_item_knn_is_cosine_with_shrink():
    inter = _interactions()
    matrix = interaction_matrix(inter, behaviour_weights={"purchase": 1.0}, aggregate="max")
    knn = ItemKNN(neighbours=10, shrink=0.0).fit(matrix)
    # Items 10 (users 1, 2) and 11 (users 1, 2, 3): 2 / sqrt(2 * 3).
    assert knn.similarity.toarray()[0, 1] == pytest.approx(2 / np.sqrt(6), abs=1e-6)
    assert knn.similarity.toarray()[0, 0] == 0.0


def test_co_occurrence_counts_shared_baskets():
    cooc = CoOccurrence(shrink=0.0).fit(_interactions(), event_types=["purchase"])
    # Baskets: {10, 11} twice, {11, 12} once.
    assert cooc.counts.toarray()[:3, :3].tolist() == [[0, 2, 0], [2, 0, 1], [0, 1, 0]]
    related = cooc.related(1)
    assert related.tolist() == pytest.approx([2 / np.sqrt(2 * 3), 0, 1 / np.sqrt(3), 0])
