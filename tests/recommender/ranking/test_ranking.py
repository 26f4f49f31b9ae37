import numpy as np
import pytest

from recommender.ranking import reasons
from recommender.ranking.diversity import intra_list_diversity, mmr_order
from recommender.ranking.exclusions import excluded_products
from recommender.ranking.fusion import apply_rules, blend, normalise
from recommender.ranking.types import RankedItem


def test_normalise_scales_by_the_maximum_and_zeroes_negatives():
    assert normalise(np.array([2.0, -1.0, 4.0])).tolist() == [0.5, 0.0, 1.0]
    assert normalise(np.array([-1.0, 0.0])).tolist() == [0.0, 0.0]


def test_blend_weights_normalised_sources_and_reports_components():
    total, components = blend(
        {"collaborative": np.array([1.0, 3.0]), "semantic": np.array([0.5, 0.25])},
        {"collaborative": 1.0, "semantic": 0.5, "popularity": 2.0},
        size=2,
    )
    assert components["collaborative"].tolist() == pytest.approx([1 / 3, 1.0])
    assert components["semantic"].tolist() == [0.5, 0.25]
    assert total.tolist() == pytest.approx([1 / 3 + 0.5, 1.25])


def test_rules_run_in_order_after_fusion():
    item = RankedItem(index=0, product_id=7, score=1.0, sources=(), components={}, reasons=())
    double = lambda items: [  # noqa: E731
        RankedItem(i.index, i.product_id, i.score * 2, i.sources, i.components, i.reasons)
        for i in items
    ]
    assert apply_rules([item], [double, double])[0].score == 4.0


def test_excluded_products_follow_the_configured_event_types():
    excluded = excluded_products(
        product_ids=[1, 2, 3],
        event_types=["purchase", "view", "add_to_cart"],
        exclude_event_types=("purchase", "add_to_cart"),
        also=[9],
    )
    assert excluded == {1, 3, 9}


def test_mmr_with_lambda_one_keeps_score_order():
    vectors = np.eye(3, dtype=np.float32)
    assert mmr_order(np.array([0.2, 0.9, 0.5]), vectors, k=3, lam=1.0) == [1, 2, 0]


def test_mmr_prefers_a_different_item_over_a_near_duplicate():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    # Picks 0, then 1 scores 0.5*0.95 - 0.5*1 = -0.025, 2 scores 0.5*0.8 - 0 = 0.4.
    assert mmr_order(np.array([1.0, 0.95, 0.8]), vectors, k=2, lam=0.5) == [0, 2]


def test_mmr_caps_items_per_category():
    vectors = np.eye(4, dtype=np.float32)
    order = mmr_order(
        np.array([0.9, 0.8, 0.7, 0.1]),
        vectors,
        k=3,
        lam=1.0,
        categories=["ink", "ink", "ink", "coffee"],
        max_per_category=2,
    )
    assert order == [0, 1, 3]


def test_mmr_rejects_a_lambda_outside_zero_to_one():
    with pytest.raises(ValueError, match="mmr_lambda"):
        mmr_order(np.array([1.0]), np.eye(1), k=1, lam=1.5)


def test_intra_list_diversity_is_one_minus_mean_pairwise_cosine():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    # Pairwise cosines 0, 0.6, 0.8: mean 1.4 / 3.
    assert intra_list_diversity(vectors) == pytest.approx(1 - 1.4 / 3)


def test_reasons_use_the_products_own_words():
    title = "WHITE HANGING HEART T-LIGHT HOLDER"
    assert reasons.because_you(event_type="purchase", title=title) == f"because you bought {title}"
    assert reasons.similar_to(event_type="view", title="A4 PAPER") == (
        "similar to what you viewed: A4 PAPER"
    )
    assert reasons.popular_in(category="Office", trending=True) == "trending in Office this week"
    assert reasons.popular_in(category="Office", trending=False) == "popular in Office"
    assert reasons.bought_together(title="INK") == "customers who bought INK also bought this"
    assert reasons.new_arrival(category="Office") == "new arrival in Office"
