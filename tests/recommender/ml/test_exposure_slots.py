"""Exposure slots on a synthetic shop: when a product without behaviour is, or is not, given a
slot, and that the served list (``recommend``) and the evaluated one (``rank``) agree."""

import numpy as np
import pytest

from recommender.ml.engine import ConfigError, EngineConfig, EngineData, History, HybridEngine
from recommender.ml.interactions import interactions_from_records
from recommender.ranking.rules import Filter

DAY = 86_400.0
NOW = 200 * DAY
WARM = list(range(1, 25))  # Stationery, bought together.
COFFEE = [31, 32, 33, 34]
NEAR, MIDDLE, FAR = 100, 101, 102  # Never bought: close to, half-way from, far from stationery.
IDS = [*WARM, *COFFEE, NEAR, MIDDLE, FAR]
ONLY_COLLABORATIVE = {"collaborative": 1.0}


def _unit(vector):
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _vectors():
    rng = np.random.default_rng(3)
    rows = [_unit([1.0, *(0.3 * rng.normal(size=3))]) for _ in WARM]
    rows += [_unit([0.0, 0.0, 1.0, 0.2 * rng.normal()]) for _ in COFFEE]
    first = rows[0]  # Product 1, which the test customer bought.
    across = _unit(np.array([0.0, 0.0, 0.0, 1.0]) - first[3] * first)  # Orthogonal to it.
    third = np.array([0.0, 0.0, 1.0, 0.0]) - first[2] * first - across[2] * across
    rows += [
        _unit(first + np.array([0.0, 0.05, 0.0, 0.0])),  # NEAR: cosine about 0.99.
        _unit(0.6 * first + 0.8 * across),  # MIDDLE: cosine 0.6.
        _unit(0.3 * first + np.sqrt(0.91) * _unit(third)),  # FAR: cosine 0.3, a coffee.
    ]
    return np.stack(rows)


def _data():
    rng = np.random.default_rng(7)
    users, items, times = [], [], []
    for user in range(40):
        for item in rng.choice(WARM, size=6, replace=False):
            users.append(user)
            items.append(int(item))
            times.append(float(rng.uniform(0, NOW - DAY)))
    for user in range(40, 50):
        for item in COFFEE:
            users.append(user)
            items.append(item)
            times.append(float(rng.uniform(0, NOW - DAY)))
    inter = interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(items),
        timestamps=times,
        catalogue_ids=IDS,
    )
    n = len(IDS)
    return EngineData(
        item_ids=np.array(IDS, dtype=np.int64),
        item_vectors=_vectors(),
        has_vector=np.ones(n, dtype=bool),
        item_titles=[f"PRODUCT {pid}" for pid in IDS],
        item_categories=["Office"] * len(WARM) + ["Kitchen"] * 4 + ["Office", "Office", "Kitchen"],
        item_created_at=np.zeros(n),
        item_active=np.ones(n, dtype=bool),
        interactions=inter,
    )


@pytest.fixture(scope="module")
def fitted():
    return HybridEngine(EngineConfig()).fit(_data(), now=NOW)


def _engine(fitted, **changes):
    changes.setdefault("source_weights", ONLY_COLLABORATIVE)
    return fitted.with_config(fitted.config.replace(**changes))


BOUGHT_ONE = History(product_ids=[1], event_types=["purchase"], timestamps=[NOW - DAY])


def _similarity(pid):
    vectors = _vectors()
    return float(vectors[IDS.index(pid)] @ vectors[IDS.index(1)])


def _ids(items):
    return [item.product_id for item in items]


def test_the_shop_is_what_the_tests_assume():
    assert _similarity(NEAR) > 0.9
    assert _similarity(MIDDLE) == pytest.approx(0.6, abs=1e-6)
    assert _similarity(FAR) == pytest.approx(0.3, abs=1e-6)


def test_a_product_without_behaviour_similar_enough_takes_the_last_slot(fitted):
    plain = _engine(fitted, exposure_slots=0).recommend(BOUGHT_ONE, k=10, now=NOW)
    assert len(plain) == 10
    assert not {NEAR, MIDDLE, FAR} & set(_ids(plain))  # The blend alone never shows them.

    items = _engine(fitted, exposure_slots=1, exposure_min_score=1.2).recommend(
        BOUGHT_ONE, k=10, now=NOW
    )
    assert _ids(items) == [*_ids(plain[:9]), NEAR]
    assert items[9].sources == ("exposure",)
    assert items[9].score == 0.0  # Placed by the slot, not by the blend.
    assert items[9].reasons == ("new: similar to what you bought: PRODUCT 1",)
    assert all(item.sources[0] != "exposure" for item in items[:9])


def test_no_slot_below_the_minimum_similarity_or_without_slots(fitted):
    plain = _ids(_engine(fitted, exposure_slots=0).recommend(BOUGHT_ONE, k=20, now=NOW))
    above_all = _engine(fitted, exposure_slots=1, exposure_min_score=2.0)
    assert _ids(above_all.recommend(BOUGHT_ONE, k=20, now=NOW)) == plain
    # Between MIDDLE's and NEAR's exposure score: NEAR takes the first slot, none is left for
    # the second.
    scores = _exposure_scores(fitted)
    assert scores[MIDDLE] < 1.5 < scores[NEAR]
    between = _engine(fitted, exposure_slots=1, exposure_min_score=1.5)
    assert _ids(between.recommend(BOUGHT_ONE, k=20, now=NOW)) == [*plain[:9], NEAR, *plain[9:19]]


def test_each_run_of_ten_positions_gets_its_slot(fitted):
    plain = _ids(_engine(fitted, exposure_slots=0).recommend(BOUGHT_ONE, k=20, now=NOW))
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=1.2)
    items = engine.recommend(BOUGHT_ONE, k=20, now=NOW)
    assert _ids(items) == [*plain[:9], NEAR, *plain[9:18], MIDDLE]
    assert [i for i, item in enumerate(items) if item.sources[0] == "exposure"] == [9, 19]
    # Two slots per run: positions 9 and 10 of the first run, 19 and 20 of the second; FAR's
    # exposure score is below the minimum.
    two = _engine(fitted, exposure_slots=2, exposure_min_score=1.2)
    assert _ids(two.recommend(BOUGHT_ONE, k=20, now=NOW)) == [
        *plain[:8],
        NEAR,
        MIDDLE,
        *plain[8:18],
    ]


def test_a_product_without_behaviour_ranked_by_the_blend_fills_the_quota(fitted):
    # A strong semantic weight ranks NEAR first on its own: the slot at 10 stays the blend's.
    weights = {"collaborative": 1.0, "semantic": 20.0}
    plain = _engine(fitted, exposure_slots=0, source_weights=weights)
    slotted = _engine(fitted, exposure_slots=1, exposure_min_score=1.2, source_weights=weights)
    expected = plain.recommend(BOUGHT_ONE, k=10, now=NOW)
    assert expected[0].product_id == NEAR
    items = slotted.recommend(BOUGHT_ONE, k=10, now=NOW)
    assert _ids(items) == _ids(expected)
    assert all(item.sources[0] != "exposure" for item in items)


def test_the_evaluated_ranking_is_the_served_list(fitted):
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=1.2)
    rows = engine.rank(BOUGHT_ONE, k=20, now=NOW)
    served = engine.recommend(BOUGHT_ONE, k=20, now=NOW)
    assert [IDS[row] for row in rows] == _ids(served)


def test_excluded_and_filtered_products_take_no_slot(fitted):
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=1.2)
    plain = _ids(_engine(fitted, exposure_slots=0).recommend(BOUGHT_ONE, k=10, now=NOW))
    # NEAR excluded for this request: MIDDLE, the next in the pool, takes the slot.
    items = engine.recommend(BOUGHT_ONE, k=10, now=NOW, exclude_ids=[NEAR])
    assert _ids(items) == [*plain[:9], MIDDLE]
    # A merchandising filter removes NEAR and MIDDLE: FAR is below the minimum, so no slot.
    gone = Filter(rule_id=1, name="out of stock", product_ids=frozenset({NEAR, MIDDLE}))
    assert _ids(engine.recommend(BOUGHT_ONE, k=10, now=NOW, rules=[gone])) == plain


def test_a_category_list_takes_its_slot_from_the_category(fitted):
    # Kitchen: the coffees by popularity, then FAR (Kitchen, never bought) in the slot of a
    # list of 4; NEAR and MIDDLE, closer to the customer, are Office products.
    weights = {"collaborative": 1.0, "popularity": 0.1}
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=-1.0, source_weights=weights)
    kitchen = engine.recommend(BOUGHT_ONE, k=4, now=NOW, category="Kitchen")
    assert _ids(kitchen)[3] == FAR
    assert kitchen[3].sources == ("exposure",)
    assert set(_ids(kitchen)[:3]) <= set(COFFEE)


def test_a_product_embedded_after_the_fit_can_take_a_slot(fitted):
    vectors = _vectors()
    newcomer = _unit(vectors[IDS.index(1)] + 0.01)  # Close to product 1; no look-alikes yet.

    def ann(query, n):
        scores = {pid: float(vectors[i] @ query) for i, pid in enumerate(IDS)}
        scores[999] = float(newcomer @ query)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:n]

    plain = _ids(_engine(fitted, exposure_slots=0).recommend(BOUGHT_ONE, k=10, now=NOW, ann=ann))
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=0.9)
    # The fitted products without events excluded: the newcomer, which only the search knows,
    # takes the slot with its similarity.
    items = engine.recommend(BOUGHT_ONE, k=10, now=NOW, ann=ann, exclude_ids=[NEAR, MIDDLE, FAR])
    assert _ids(items) == [*plain[:9], 999]
    assert items[9].sources == ("exposure",)
    assert items[9].reasons == ("new: similar to what you bought: PRODUCT 1",)


def test_a_customer_without_history_gets_no_slot(fitted):
    engine = _engine(fitted, exposure_slots=3, exposure_min_score=-1.0)
    items = engine.recommend(History(), k=10, now=NOW)
    assert len(items) == 10
    assert all(item.sources[0] != "exposure" for item in items)


def _exposure_scores(fitted):
    """The exposure score of each product without events for ``BOUGHT_ONE``, computed here from
    its definition: the similarity to the customer's interest (product 1's vector) plus the best
    cosine x collaborative score among its 20 look-alikes (the nearest products with events),
    relative to the customer's best collaborative score."""
    vectors = _vectors()
    collaborative = _engine(fitted).source_scores(BOUGHT_ONE, now=NOW)["collaborative"]
    best = max(collaborative.values())
    warm = [*WARM, *COFFEE]
    out = {}
    for pid in (NEAR, MIDDLE, FAR):
        cosines = {w: float(vectors[IDS.index(w)] @ vectors[IDS.index(pid)]) for w in warm}
        lookalikes = sorted(warm, key=lambda w: -cosines[w])[:20]
        borrowed = max(
            max(cosines[w], 0.0) * max(collaborative.get(w, 0.0), 0.0) for w in lookalikes
        )
        out[pid] = _similarity(pid) + borrowed / best
    return out


def test_the_exposure_score_is_similarity_plus_what_look_alikes_earn(fitted):
    scores = _exposure_scores(fitted)
    assert scores[NEAR] > scores[MIDDLE] > _similarity(MIDDLE)  # The look-alikes earn a share.
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=0.0)
    pool = engine.explain(BOUGHT_ONE, now=NOW).sources["exposure"]
    assert [c.product_id for c in pool] == [NEAR, MIDDLE, FAR]
    assert [c.raw for c in pool] == pytest.approx([scores[p] for p in (NEAR, MIDDLE, FAR)])


def test_the_inspector_lists_the_exposure_pool(fitted):
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=1.2)
    explanation = engine.explain(BOUGHT_ONE, now=NOW)
    pool = explanation.sources["exposure"]
    assert [c.product_id for c in pool] == [NEAR, MIDDLE]  # FAR is below the minimum score.
    assert _exposure_scores(fitted)[FAR] < 1.2
    assert [c.fused_rank for c in pool] == [0, 0]  # Outside the blend's order: slots only.
    assert [c.weighted for c in pool] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exposure_slots": 6}, r"^exposure_slots: expected an integer from 0 to 5, got 6$"),
        ({"exposure_slots": -1}, r"^exposure_slots: expected an integer from 0 to 5, got -1$"),
        ({"exposure_slots": True}, r"^exposure_slots: expected an integer from 0 to 5, got True$"),
        ({"exposure_slots": 1.5}, r"^exposure_slots: expected an integer from 0 to 5, got 1.5$"),
        ({"exposure_min_score": 2.5}, r"^exposure_min_score: expected a number from -1 to 2"),
        ({"exposure_min_score": "x"}, r"^exposure_min_score: expected a number from -1 to 2"),
    ],
)
def test_bad_exposure_settings_are_refused_naming_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        EngineConfig.from_dict(changes)


def test_prepare_builds_once_what_every_copy_of_the_engine_then_reads(fitted):
    # A fresh copy of the fit's derived state: other tests' requests may have built it already.
    engine = _engine(fitted, exposure_slots=1, exposure_min_score=1.2)
    engine._derived = {}
    assert engine.prepare() is engine
    built = dict(engine._derived)
    assert sorted(built) == ["exposure_pool", "id_rows"]

    copy = engine.with_config(engine.config.replace(mmr_lambda=1.0))
    items = copy.recommend(BOUGHT_ONE, k=10, now=NOW)
    assert _ids(items)[9] == NEAR  # The slot, scored from the prepared pool.
    assert copy._derived["exposure_pool"] is built["exposure_pool"]
    assert copy._derived["id_rows"] is built["id_rows"]

    without_slots = _engine(fitted, exposure_slots=0)
    without_slots._derived = {}
    without_slots.prepare()
    assert sorted(without_slots._derived) == ["id_rows"]
