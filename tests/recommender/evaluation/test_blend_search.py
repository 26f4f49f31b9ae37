"""The budgeted blend search that every fit runs (``search_blend``) and its one decision rule
(``search_verdict``), on a synthetic shop where what customers buy next follows popularity and
the product vectors are noise."""

import functools

import numpy as np
import pytest

from recommender.evaluation.blend_search import (
    SEARCHED,
    BlendSearch,
    TooLittleData,
    _cheapest,
    _shallowest,
    search_blend,
    search_verdict,
    serving_cost,
)
from recommender.ml.engine import EngineConfig, EngineData
from recommender.ml.interactions import interactions_from_records

DAY = 86_400.0
N_ITEMS = 60


def popular_shop(customers: int = 400, per_customer: int = 6, seed: int = 3) -> EngineData:
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + N_ITEMS, dtype=np.int64)
    share = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.2
    share /= share.sum()
    users, items, times = [], [], []
    for user in range(customers):
        bought = rng.choice(N_ITEMS, size=per_customer, replace=False, p=share)
        for step, item in enumerate(bought):
            users.append(user)
            items.append(int(ids[item]))
            times.append(float(user % 50) * DAY + step * 3600.0)
    inter = interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(users),
        timestamps=times,
        catalogue_ids=ids.tolist(),
    )
    vectors = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return EngineData(
        item_ids=ids,
        item_vectors=vectors,
        has_vector=np.ones(N_ITEMS, dtype=bool),
        item_titles=[f"product {i}" for i in ids],
        item_categories=["all"] * N_ITEMS,
        item_created_at=np.zeros(N_ITEMS),
        item_active=np.ones(N_ITEMS, dtype=bool),
        interactions=inter,
    )


# Noise-led: the semantic source (random vectors) outweighs everything, popularity is off.
NOISY = EngineConfig().replace(
    source_weights={**EngineConfig().source_weights, "semantic": 3.0, "popularity": 0.0},
    half_life_days=365.0,
)


@functools.cache
def searched(cost_tolerance: float = 0.0) -> BlendSearch:
    """The search of ``popular_shop()`` from NOISY, run once for the tests that read it (it is
    deterministic: ``test_the_search_is_reproducible``). Nothing may change what it returns."""
    return search_blend(
        popular_shop(), config=NOISY, budget_seconds=120, seed=0, cost_tolerance=cost_tolerance
    )


def test_the_search_finds_a_better_blend_than_a_noise_led_configuration():
    # when
    found = searched()

    # then: the winner beats the active point on the same customers, by the one rule
    assert found.users == 400
    assert [rung["customers"] for rung in found.rungs] == [250, 400]
    assert found.rungs[0]["pairs"] == 10  # Five half-lives x two interest counts.
    assert found.best_ndcg > 1.2 * found.active_ndcg
    assert found.config.source_weights["semantic"] < 3.0
    assert search_verdict(found, active=NOISY, min_gain=0.01) is None
    assert not found.budget_exhausted


def test_a_configuration_that_is_already_the_best_is_kept():
    # given: the configuration the search itself chose is the active one
    best = searched().config

    # when: searched again
    again = search_blend(popular_shop(), config=best, budget_seconds=120, seed=0)

    # then: nothing beats it by the gain needed, so it stays
    assert again.best_ndcg >= again.active_ndcg
    verdict = search_verdict(again, active=best, min_gain=0.01)
    assert verdict is not None
    assert verdict.endswith("below the 1% gain needed")


def test_locked_settings_keep_their_values():
    # given: a merchandiser locked the semantic weight and the half-life
    locked = ("source_weights.semantic", "half_life_days")

    # when
    found = search_blend(popular_shop(), config=NOISY, locked=locked, budget_seconds=120, seed=0)

    # then: those two are the active ones; the rest moved
    assert found.config.source_weights["semantic"] == 3.0
    assert found.config.half_life_days == 365.0
    assert found.config.source_weights["popularity"] > 0.0
    assert set(locked) <= set(SEARCHED)


def test_a_spent_budget_still_compares_on_the_first_sample_and_keeps_the_active_point():
    # when: no time at all after the validation fit
    found = search_blend(popular_shop(), config=NOISY, budget_seconds=0.0, seed=0)

    # then: the active pair alone was scored, on the first sample, so nothing replaces it
    assert found.budget_exhausted
    assert found.rungs == [{"customers": 250, "pairs": 1, "best": found.rungs[0]["best"]}]
    assert found.config.half_life_days == NOISY.half_life_days
    assert found.config.n_interests == NOISY.n_interests
    assert found.best_ndcg >= found.active_ndcg


def test_a_shop_too_small_to_learn_from_is_refused_with_the_reason():
    with pytest.raises(TooLittleData, match="customers have a validation product"):
        search_blend(popular_shop(customers=20), config=NOISY, budget_seconds=60)


def test_the_search_is_reproducible():
    first = searched()
    second = search_blend(popular_shop(), config=NOISY, budget_seconds=120, seed=0)
    assert first.config == second.config
    assert first.best_ndcg == second.best_ndcg


def test_the_cheapest_point_within_the_tolerance_is_chosen():
    # given: scores of two (half-life, interests) pairs at three weight points
    # (collaborative, semantic, popularity, trending); the active point is the first row
    points = np.array([[1.0, 3.0, 0.0, 0.0], [1.0, 0.5, 0.2, 0.0], [1.0, 0.0, 0.1, 0.0]])
    means = {
        (7.0, 3): np.array([0.150, 0.2000, 0.1900]),
        (7.0, 1): np.array([0.140, 0.1990, 0.1985]),
    }

    # when / then: within 1% of the best (0.198 and up) the cheapest is one interest with
    # one source on, although a point with two sources on scores higher
    assert _cheapest(means, points, active_pair=(7.0, 3), floor=0.2 * 0.99) == (
        (7.0, 1),
        2,
        0.1985,
    )
    # without tolerance the best point wins whatever it costs
    assert _cheapest(means, points, active_pair=(7.0, 3), floor=0.2) == ((7.0, 3), 1, 0.2)
    # within 0.5% only the two-source point is in reach among one-interest points
    assert _cheapest(means, points, active_pair=(7.0, 3), floor=0.2 * 0.995) == (
        (7.0, 1),
        1,
        0.199,
    )


def test_an_equally_cheap_tie_keeps_the_active_point():
    points = np.array([[1.0, 0.2, 0.0, 0.0], [1.0, 0.3, 0.0, 0.0]])
    means = {(30.0, 1): np.array([0.25, 0.25])}
    assert _cheapest(means, points, active_pair=(30.0, 1), floor=0.25) == ((30.0, 1), 0, 0.25)


def test_the_search_trades_validation_score_for_serving_cost_only_within_the_tolerance():
    best, cheap, anything = searched(), searched(0.05), searched(1.0)

    # the same search: the same best score; without tolerance the chosen point is the best
    assert best.top_ndcg == cheap.top_ndcg == anything.top_ndcg
    assert best.best_ndcg == best.top_ndcg
    # with 5% it may give up at most 5% for a point no more expensive
    assert cheap.best_ndcg >= 0.95 * cheap.top_ndcg
    assert cheap.config.n_interests <= best.config.n_interests
    # with any score allowed: one interest and none of the tuned sources on (collaborative only)
    assert anything.config.n_interests == 1
    assert [anything.config.source_weights[s] for s in ("semantic", "popularity", "trending")] == [
        0.0,
        0.0,
        0.0,
    ]
    assert anything.as_dict()["cost_tolerance"] == 1.0
    # ... and the shallowest candidate lists
    assert anything.config.candidates_per_source == 50
    assert anything.best_point["candidates_per_source"] == 50


def test_a_better_region_is_served_by_its_cheapest_point_if_that_beats_the_active_one():
    # the best point found is 1.3% above the active one; its cheapest equivalent only 0.8%
    one = THREE.replace(n_interests=1)
    region = BlendSearch(
        config=THREE, best_ndcg=0.1512, active_ndcg=0.1500, users=300, points=10, top_ndcg=0.1520
    )
    assert search_verdict(region, active=one, min_gain=0.01) is None
    # ... but a chosen point below the active one never replaces it
    below = BlendSearch(
        config=THREE, best_ndcg=0.1499, active_ndcg=0.1500, users=300, points=10, top_ndcg=0.1520
    )
    assert search_verdict(below, active=one, min_gain=0.01) is not None


def _found(config: EngineConfig, best: float, active: float) -> BlendSearch:
    return BlendSearch(
        config=config,
        best_ndcg=best,
        active_ndcg=active,
        users=300,
        points=10,
        top_ndcg=best,
        cost_tolerance=0.01,
    )


THREE = EngineConfig().replace(
    n_interests=3,
    source_weights={**EngineConfig().source_weights, "semantic": 0.5, "popularity": 0.1},
)


def test_a_point_cheaper_to_serve_and_within_the_tolerance_replaces_the_active_one():
    one = THREE.replace(n_interests=1)
    assert serving_cost(THREE) == (3, 2, 200)
    assert serving_cost(one) == (1, 2, 200)
    # cheaper and within 1% of the active point: it wins without the gain
    assert search_verdict(_found(one, 0.1500, 0.1500), active=THREE, min_gain=0.01) is None
    assert search_verdict(_found(one, 0.1490, 0.1500), active=THREE, min_gain=0.01) is None
    # cheaper but more than 1% worse: it does not
    assert search_verdict(_found(one, 0.1480, 0.1500), active=THREE, min_gain=0.01) == (
        "the best point found scored 0.1480 NDCG@10 on validation against the active "
        "configuration's 0.1500 (300 customers), below the 1% gain needed"
    )
    # dearer and a little better: the gain is needed
    assert search_verdict(_found(THREE, 0.1510, 0.1500), active=one, min_gain=0.01) is not None
    assert search_verdict(_found(THREE, 0.1520, 0.1500), active=one, min_gain=0.01) is None


def test_from_an_expensive_active_point_the_search_ends_where_it_would_from_a_cheap_one():
    # given: the point the search chooses with a 5% tolerance, and an expensive active point
    shop = popular_shop()
    cheap = searched(0.05)
    dear = cheap.config.replace(
        n_interests=3,
        source_weights={**cheap.config.source_weights, "semantic": 0.3, "trending": 0.05},
    )

    # when: searched again from the cheap point and from the expensive one
    again = search_blend(shop, config=cheap.config, budget_seconds=120, seed=0, cost_tolerance=0.05)
    from_dear = search_blend(shop, config=dear, budget_seconds=120, seed=0, cost_tolerance=0.05)

    # then: the cheap point stays, and replaces the expensive one
    assert search_verdict(again, active=cheap.config, min_gain=0.01) is not None
    assert serving_cost(from_dear.config) <= serving_cost(cheap.config)
    assert search_verdict(from_dear, active=dear, min_gain=0.01) is None


class ExactSearch:
    """An exact cosine search over ``data``'s vectors, as an engine's ``ann`` hook, counting the
    queries it answers."""

    def __init__(self, data: EngineData) -> None:
        self.ids, self.vectors, self.queries = data.item_ids, data.item_vectors, 0

    def __call__(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        self.queries += 1
        scores = self.vectors @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-scores, kind="stable")[:n]
        return list(zip(self.ids[best].tolist(), scores[best].astype(float).tolist(), strict=True))


def test_the_validation_candidates_come_from_the_search_given():
    # given: a search that answers as the engine's own exact search does (the serving index
    # stands there for a large catalogue)
    search = ExactSearch(popular_shop())

    # when
    found = search_blend(popular_shop(), config=NOISY, budget_seconds=120, seed=0, search=search)

    # then: the candidates were searched there, and the search ends where it does without it
    assert search.queries > 0
    assert (found.best_point, found.best_ndcg, found.users) == (
        searched().best_point, searched().best_ndcg, searched().users,
    )  # fmt: skip


def test_without_a_search_every_pair_shares_one_index_of_the_engine_s_own(own_index_builds):
    # given: a catalogue above the exact search's limit, so that an engine without a search
    # builds an hnswlib index of its own vectors
    built = own_index_builds(N_ITEMS // 2)

    # when: every (half-life, interests) pair is scored
    found = search_blend(popular_shop(), config=NOISY, budget_seconds=120, seed=0)

    # then: one index for them all, over the whole catalogue
    assert found.rungs[0]["pairs"] > 1
    assert built == [N_ITEMS]


def test_the_shallowest_candidate_depth_within_the_floor_is_chosen():
    # given: the chosen point's NDCG@10 at each candidates_per_source
    by_depth = {50: 0.1900, 100: 0.1985, 200: 0.2000}

    # then: within 1% of 0.2 the 100 deep lists do; without tolerance only 200; a floor none
    # reaches keeps the deepest
    assert _shallowest(by_depth, floor=0.2 * 0.99) == 100
    assert _shallowest(by_depth, floor=0.2) == 200
    assert _shallowest(by_depth, floor=0.15) == 50
    assert _shallowest(by_depth, floor=0.3) == 200


def test_shallower_candidate_lists_within_the_tolerance_replace_the_active_depth():
    shallow = THREE.replace(candidates_per_source=100)
    assert serving_cost(shallow) == (3, 2, 100)
    assert search_verdict(_found(shallow, 0.1490, 0.1500), active=THREE, min_gain=0.01) is None
    assert search_verdict(_found(shallow, 0.1480, 0.1500), active=THREE, min_gain=0.01) is not None


def test_a_locked_candidate_depth_is_not_searched():
    # when: the depth is locked (the shop above serves as well from 50 candidates per source)
    found = search_blend(
        popular_shop(),
        config=NOISY,
        locked=("candidates_per_source",),
        budget_seconds=120,
        seed=0,
        cost_tolerance=1.0,
    )

    # then: the active depth stays, while the rest moved as without the lock
    assert found.config.candidates_per_source == NOISY.candidates_per_source == 200
    assert found.config.n_interests == searched(1.0).config.n_interests == 1
