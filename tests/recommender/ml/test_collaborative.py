import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml import neighbours as nb
from recommender.ml.collaborative import Popularity, top_k
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
    assert pop.scores is not None
    assert pop.scores.tolist() == pytest.approx([0.125 + 0.25 + 0.25, 0.125 + 0.25 + 0.5, 0.5, 0])
    # Only the view of product 10 is in the last week: (0.25 + 1) / (expected + 1) * log(1.25).
    assert pop.top(2, trending=True).tolist() == [0]
    assert pop.top(3).tolist() == [1, 0, 2]


def _bought():
    return interaction_matrix(_interactions(), behaviour_weights={"purchase": 1.0}, aggregate="max")


def _ease_reference(matrix, l2):
    """The textbook EASE in float64 (Steck 2019): the in-place float32 solution must match it."""
    x = matrix.toarray().astype(np.float64)
    precision = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    weights = precision / (-np.diag(precision))
    np.fill_diagonal(weights, 0.0)
    return weights


def test_ease_recovers_items_bought_by_similar_customers():
    weights = nb.ease_weights(_bought(), l2=0.5)
    assert weights.shape == (4, 4)
    assert weights.dtype == np.float32
    assert np.diag(weights).tolist() == [0, 0, 0, 0]
    assert np.allclose(weights, _ease_reference(_bought(), 0.5), atol=1e-5)
    scores = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32) @ weights
    # Whoever bought 10 bought 11 too; 12 was bought only with 11, so EASE weighs it negative.
    assert top_k(scores, 1, exclude=np.array([0])).tolist() == [1]
    assert scores[2] < 0 < scores[1]


def test_ease_in_place_matches_the_textbook_solution_on_a_larger_matrix():
    rng = np.random.default_rng(0)
    matrix = sp.csr_matrix((rng.random((300, 1100)) < 0.02).astype(np.float32))
    weights = nb.ease_weights(matrix, l2=20.0)
    assert np.abs(weights - _ease_reference(matrix, 20.0)).max() < 1e-5


def test_pruned_ease_keeps_each_rows_largest_weights_by_magnitude():
    weights = np.array([[0, -3, 1, 2], [1, 0, 0, 0], [5, -6, 0, 1], [0, 0, 0, 0]], np.float32)
    pruned = nb.prune_dense(weights, k=2)
    assert [pruned.row(i)[0].tolist() for i in range(4)] == [[1, 3], [0], [0, 1], []]
    assert pruned.row(2)[1].tolist() == [5.0, -6.0]
    cols, sums = pruned.accumulate(np.array([0, 2]), np.array([1.0, 0.5]))
    assert cols.tolist() == [0, 1, 3]
    assert sums.tolist() == [2.5, -6.0, 2.0]


def test_item_knn_is_the_cosine_of_the_product_columns():
    knn = nb.item_knn(_bought(), k=10, threads=1)
    # Items 10 (users 1, 2) and 11 (users 1, 2, 3): 2 / sqrt(2 * 3); no product is its own
    # neighbour; 13 was never bought and has none.
    cols, values = knn.row(0)
    assert cols.tolist() == [1]
    assert values.tolist() == pytest.approx([2 / np.sqrt(6)], abs=1e-6)
    assert knn.row(1)[0].tolist() == [0, 2]
    assert knn.row(3)[0].tolist() == []


def test_item_knn_keeps_the_k_nearest():
    rng = np.random.default_rng(1)
    matrix = sp.csr_matrix((rng.random((200, 60)) < 0.2).astype(np.float32))
    knn = nb.item_knn(matrix, k=5, threads=2)
    dense = matrix.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    cosine = (dense.T @ dense) / np.outer(norms, norms)
    np.fill_diagonal(cosine, -1.0)
    for item in range(60):
        cols, values = knn.row(item)
        assert len(cols) == 5
        assert np.sort(values)[::-1] == pytest.approx(np.sort(cosine[item])[::-1][:5], abs=1e-5)


def test_co_occurrence_is_a_shrunk_cosine_of_shared_baskets():
    inter = _interactions()
    # Baskets (customer and moment): {10, 11} twice, {11, 12} once; the view of 10 is alone.
    incidence = sp.csr_matrix(
        (np.ones(6), ([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 1, 2])), shape=(3, inter.n_items)
    )
    cooc = nb.cooccurrence(incidence, k=10, shrink=1.0, threads=1)
    cols, values = cooc.row(1)
    assert cols.tolist() == [0, 2]
    # c / sqrt((b_i + 1)(b_j + 1)): 11 is in 3 baskets, 10 in 2, 12 in 1.
    assert values.tolist() == pytest.approx([2 / np.sqrt(4 * 3), 1 / np.sqrt(4 * 2)], abs=1e-6)


def test_neighbour_lists_gather_only_the_rows_asked_for():
    lists = nb.Neighbours.from_csr(sp.csr_matrix(np.array([[0, 2, 0], [1, 0, 3], [0, 0, 0]])))
    cols, values, sources = lists.gather(np.array([1, 0]), np.array([2.0, 1.0]))
    assert cols.tolist() == [0, 2, 1]
    assert values.tolist() == [2.0, 6.0, 2.0]
    assert sources.tolist() == [1, 1, 0]
    assert nb.lookup(np.array([0, 2]), np.array([5.0, 7.0]), np.array([2, 1, 0])).tolist() == [
        7.0,
        0.0,
        5.0,
    ]


def _top_k_by_dense(matrix: sp.csr_matrix, k: int) -> list[list[tuple[int, float]]]:
    """Each row's k best positive entries of ``matrix.T @ matrix``, itself excluded, ties to
    the lower column: the definition both ways of computing the lists must meet."""
    dense = matrix.toarray().astype(np.float64)
    product = dense.T @ dense
    np.fill_diagonal(product, 0.0)
    rows = []
    for item in range(product.shape[0]):
        order = np.lexsort((np.arange(product.shape[1]), -product[item]))
        best = [int(c) for c in order[:k] if product[item, c] > 0]
        rows.append(sorted((c, float(product[item, c])) for c in best))
    return rows


def _as_rows(result: sp.csr_matrix) -> list[list[tuple[int, float]]]:
    result.sort_indices()
    return [
        [(int(c), float(v)) for c, v in zip(*_row(result, item), strict=True)]
        for item in range(result.shape[0])
    ]


def _row(result: sp.csr_matrix, item: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = result.indptr[item], result.indptr[item + 1]
    return result.indices[start:end], result.data[start:end]


@pytest.mark.parametrize("block_entries", [1, 7, 10**9])
def test_blocked_all_pairs_keeps_each_rows_k_best_across_block_sizes(block_entries):
    # Baskets of two or three products: few entries to merge, so the blocked way serves.
    rng = np.random.default_rng(3)
    rows = np.repeat(np.arange(120), rng.integers(2, 4, size=120))
    matrix = sp.csr_matrix(
        (np.ones(len(rows)), (rows, rng.integers(0, 200, size=len(rows)))), shape=(120, 200)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # Integer counts: many exact ties at the k-th place.
    assert nb.prefers_blocks(nb.merge_bound(matrix), 3)  # Fewer entries than 200 x (3 + 1).
    result = nb._all_pairs(matrix, k=3, threads=1, block_entries=block_entries)
    expected = _top_k_by_dense(matrix, 3)
    assert [len(r) for r in _as_rows(result)] == [len(r) for r in expected]
    assert _as_rows(result) == [[(c, pytest.approx(v)) for c, v in r] for r in expected]
    assert result.data.dtype == np.float32
    assert result.indices.dtype == np.int32


def test_dense_histories_use_implicit_and_agree_with_the_definition():
    rng = np.random.default_rng(4)
    matrix = sp.csr_matrix(rng.random((60, 30)) * (rng.random((60, 30)) < 0.5))
    assert not nb.prefers_blocks(nb.merge_bound(matrix), 4)  # implicit's way is chosen.
    result = nb._all_pairs(matrix, k=4, threads=1)
    expected = _top_k_by_dense(matrix, 4)  # Random weights: no ties.
    got = _as_rows(result)
    for have, want in zip(got, expected, strict=True):
        assert [c for c, _ in have] == [c for c, _ in want]
        assert [v for _, v in have] == pytest.approx([v for _, v in want], rel=1e-5)
