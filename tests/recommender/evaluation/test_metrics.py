import math

import numpy as np
import pytest

from recommender.evaluation import metrics


def test_rank_of_is_one_based():
    assert metrics.rank_of([5, 7, 9], 9) == 3
    assert metrics.rank_of([5, 7, 9], 4) is None


def test_recall_ndcg_and_mrr_for_one_held_out_item():
    assert metrics.recall_at_k(3, 3) == 1.0
    assert metrics.recall_at_k(4, 3) == 0.0
    assert metrics.recall_at_k(None, 3) == 0.0
    assert metrics.ndcg_at_k(1, 10) == 1.0
    assert metrics.ndcg_at_k(3, 10) == 0.5  # 1 / log2(4)
    assert metrics.ndcg_at_k(2, 10) == pytest.approx(1 / math.log2(3))
    assert metrics.ndcg_at_k(11, 10) == 0.0
    assert metrics.reciprocal_rank(4) == 0.25
    assert metrics.reciprocal_rank(None) == 0.0


def test_catalogue_coverage_counts_distinct_items_in_the_top_k():
    lists = [[1, 2, 3], [2, 4, 5]]
    assert metrics.catalogue_coverage(lists, n_items=10, k=2) == 0.3  # {1, 2, 4}
    assert metrics.catalogue_coverage(lists, n_items=10, k=3) == 0.5


def test_intra_list_diversity_on_hand_computed_vectors():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert metrics.intra_list_diversity(vectors) == pytest.approx(1 - (0 + 0.6 + 0.8) / 3)
    assert metrics.intra_list_diversity(vectors[:1]) == 0.0
