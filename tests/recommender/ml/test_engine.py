import numpy as np
import pytest

from recommender.ml.engine import ConfigError, EngineConfig, EngineData, History, HybridEngine
from recommender.ml.interactions import interactions_from_records

DAY = 86_400.0
NOW = 100 * DAY
IDS = [10, 11, 12, 20, 21, 30]
TITLES = [
    "BLACK PRINTER INK",
    "COLOUR PRINTER INK",
    "PRINTER PAPER A4",
    "GROUND COFFEE",
    "COFFEE MUG",
    "PHOTO PRINTER INK",  # New: embedded, no events yet.
]
CATEGORIES = ["Office", "Office", "Office", "Kitchen", "Kitchen", "Office"]


def _vectors():
    raw = np.array(
        [
            [1.0, 0.1, 0.0],
            [0.9, 0.2, 0.0],
            [0.6, 0.6, 0.0],
            [0.0, 0.1, 1.0],
            [0.0, 0.3, 0.9],
            [0.95, 0.15, 0.0],
        ],
        dtype=np.float32,
    )
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def _data():
    # Ink buyers also buy paper; coffee buyers buy mugs; the coffee is bought a lot this week.
    users, items, types, times = [], [], [], []
    for user in range(1, 6):
        for item in (10, 11, 12):
            users.append(user)
            items.append(item)
            types.append("purchase")
            times.append(float(user) * DAY)
    for user in range(6, 9):
        for item in (20, 21):
            users.append(user)
            items.append(item)
            types.append("purchase")
            times.append(NOW - DAY)
    inter = interactions_from_records(
        user_ids=users, item_ids=items, event_types=types, timestamps=times, catalogue_ids=IDS
    )
    created = np.array([0.0] * 5 + [NOW - 2 * DAY])
    return EngineData(
        item_ids=np.array(IDS, dtype=np.int64),
        item_vectors=_vectors(),
        has_vector=np.ones(6, dtype=bool),
        item_titles=TITLES,
        item_categories=CATEGORIES,
        item_created_at=created,
        item_active=np.ones(6, dtype=bool),
        interactions=inter,
    )


@pytest.fixture
def engine():
    return HybridEngine(EngineConfig()).fit(_data(), now=NOW)


def _ids(items):
    return [item.product_id for item in items]


def test_purchased_products_are_excluded(engine):
    history = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY])
    items = engine.recommend(history, k=5, now=NOW)
    assert 10 not in _ids(items)
    viewed = History(product_ids=[10], event_types=["view"], timestamps=[NOW - DAY])
    assert 10 in _ids(engine.recommend(viewed, k=5, now=NOW))


def test_collaborative_reason_names_the_product_in_its_own_words(engine):
    history = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY])
    items = engine.recommend(history, k=5, now=NOW)
    assert items[0].product_id == 11
    assert items[0].sources[0] == "collaborative"
    assert items[0].reasons[0] == "because you bought BLACK PRINTER INK"


def test_a_cold_customer_gets_trending_products(engine):
    items = engine.recommend(History(), k=2, now=NOW)
    assert _ids(items) == [20, 21]
    assert items[0].sources == ("popularity", "trending")
    assert items[0].reasons == ("popular in Kitchen", "trending in Kitchen this week")
    assert _ids(engine.trending(k=2)) == [20, 21]


def test_a_session_context_personalises_an_anonymous_visitor(engine):
    items = engine.recommend(History(), k=1, now=NOW, context_ids=[10])
    assert _ids(items) == [11]
    assert items[0].sources[0] == "session"
    assert items[0].reasons[0] == "customers who bought BLACK PRINTER INK also bought this"


def test_a_new_product_reaches_a_customer_whose_interest_matches(engine):
    history = History(
        product_ids=[10, 11], event_types=["purchase", "purchase"], timestamps=[NOW, NOW]
    )
    items = engine.recommend(history, k=3, now=NOW)
    new = next(item for item in items if item.product_id == 30)
    assert new.sources[0] == "semantic"
    assert "new_arrivals" in new.sources
    assert new.reasons[0].startswith("similar to what you bought: ")


def test_a_product_embedded_after_the_fit_comes_through_the_ann_source(engine):
    vector = _vectors()[5]

    def ann(query, n):
        return [(99, float(query @ vector))]

    history = History(
        product_ids=[10, 98],
        event_types=["purchase", "view"],
        timestamps=[NOW, NOW],
        extra_vectors={98: vector},
        extra_titles={98: "INK REFILL KIT"},
    )
    items = engine.recommend(history, k=6, now=NOW, ann=ann)
    unknown = next(item for item in items if item.product_id == 99)
    assert unknown.index == -1
    assert unknown.sources == ("semantic",)


def test_fitted_products_keep_their_exact_semantic_score_when_an_ann_hook_is_given(engine):
    # The hook (the serving index) chooses the semantic candidates and may be approximate:
    # the scores of products the engine was fitted with come from its own vectors, so the
    # served list is the list the evaluation ranks.
    def ann(query, n):
        return [(pid, 0.01) for pid in IDS][:n]

    history = History(product_ids=[10], event_types=["view"], timestamps=[NOW])

    with_ann = engine.recommend(history, k=5, now=NOW, ann=ann)
    exact = engine.recommend(history, k=5, now=NOW)

    assert with_ann == exact
    assert _ids(exact) == [int(engine.item_ids[r]) for r in engine.rank(history, k=5, now=NOW)]


def test_the_semantic_source_proposes_only_what_the_ann_hook_finds(engine):
    # Stage 1 is bounded: a product the search does not return is not a semantic candidate.
    def ann(query, n):
        return [(11, 0.5), (12, 0.4)]

    history = History(product_ids=[10], event_types=["view"], timestamps=[NOW])
    config = engine.config.replace(source_weights={"semantic": 1.0})
    only_semantic = engine.with_config(config)

    assert _ids(only_semantic.recommend(history, k=5, now=NOW, ann=ann)) == [11, 12]
    assert set(_ids(only_semantic.recommend(history, k=5, now=NOW))) == {10, 11, 12, 21, 30}


def test_ids_without_vector_are_the_products_only_an_ann_hook_can_score(engine):
    assert engine.ids_without_vector([10, 99, 30, 98]).tolist() == [99, 98]
    assert engine.ids_without_vector([]).tolist() == []


def test_a_product_without_events_borrows_the_collaborative_score_of_its_look_alikes():
    # PHOTO PRINTER INK (30) has no events: with cold_collaborative it gets that share of
    # the best cosine-weighted collaborative score among the products with events.
    data = _data()
    plain = HybridEngine(EngineConfig(cold_collaborative=0.0)).fit(data, now=NOW)
    borrowing = HybridEngine(EngineConfig(cold_collaborative=0.5)).fit(data, now=NOW)
    history = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY])

    before = plain.source_scores(history, now=NOW)["collaborative"]
    after = borrowing.source_scores(history, now=NOW)["collaborative"]

    vectors = _vectors()
    expected = 0.5 * max(
        float(vectors[5] @ vectors[i]) * max(before.get(IDS[i], 0.0), 0.0) for i in range(5)
    )
    assert before[30] == 0.0
    assert after[30] == pytest.approx(expected, rel=1e-6)
    assert after[30] > 0.0
    assert {pid: after[pid] for pid in IDS[:5] if pid in after} == {
        pid: before[pid] for pid in IDS[:5] if pid in before
    }


def test_the_fit_is_done_with_its_search_before_the_collaborative_models():
    # given a fit that is told when it no longer needs its search (the serving index)
    engine = HybridEngine(EngineConfig(cold_collaborative=0.5))
    parts_done: list[list[str]] = []
    # when it is fitted
    engine.fit(_data(), now=NOW, ann_done=lambda: parts_done.append(list(engine.fit_seconds)))
    # then it is told once, with the look-alikes found and no collaborative model fitted yet
    assert parts_done == [["cold_lookalikes"]]
    lookalikes = engine.item_ids[engine._cold.row(engine._row_of(30))[0]]
    assert sorted(lookalikes.tolist()) == [10, 11, 12, 20, 21]


def test_look_alikes_survive_save_and_load(tmp_path):
    engine = HybridEngine(EngineConfig(cold_collaborative=0.5)).fit(_data(), now=NOW)
    history = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY])

    loaded = HybridEngine.load(engine.save(tmp_path / "engine.bin"))

    assert loaded.recommend(history, k=5, now=NOW) == engine.recommend(history, k=5, now=NOW)


def test_a_new_event_changes_the_next_list(engine):
    before = engine.recommend(
        History(product_ids=[10], event_types=["view"], timestamps=[NOW]), k=2, now=NOW
    )
    after = engine.recommend(
        History(product_ids=[10, 20], event_types=["view", "purchase"], timestamps=[NOW, NOW]),
        k=2,
        now=NOW,
    )
    assert _ids(before) != _ids(after)
    assert 21 in _ids(after)


def test_every_item_has_sources_components_and_a_reason(engine):
    histories = [
        History(),
        History(product_ids=[10], event_types=["view"], timestamps=[NOW]),
        History(product_ids=[20, 12], event_types=["purchase", "click"], timestamps=[0.0, NOW]),
    ]
    for history in histories:
        for item in engine.recommend(history, k=6, now=NOW, context_ids=[21]):
            assert len(item.reasons) >= 1
            assert all(item.reasons)
            assert len(item.sources) >= 1
            assert set(item.sources) == set(item.components)
            assert item.score == pytest.approx(sum(item.components.values()))


def test_similar_and_bought_together(engine):
    assert _ids(engine.similar(10, k=2, mode="semantic")) == [30, 11]
    assert _ids(engine.similar(10, k=2, mode="behavioural")) == [11, 12]
    together = engine.bought_together(20, k=1)
    assert _ids(together) == [21]
    assert together[0].reasons == ("customers who bought GROUND COFFEE also bought this",)
    with pytest.raises(KeyError, match="product 77 is not in the fitted engine"):
        engine.similar(77, k=2, mode="hybrid")


def test_save_and_load_give_the_same_recommendations(engine, tmp_path):
    path = engine.save(tmp_path / "engine.bin")
    loaded = HybridEngine.load(path)
    history = History(product_ids=[10, 20], event_types=["purchase", "view"], timestamps=[0, NOW])
    assert loaded.recommend(history, k=4, now=NOW) == engine.recommend(history, k=4, now=NOW)
    assert loaded.config == engine.config
    assert list(tmp_path.iterdir()) == [path]


def test_config_round_trips_through_json_and_names_bad_fields():
    config = EngineConfig(max_per_category=2, exclude_event_types=("purchase", "add_to_cart"))
    assert EngineConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match=r"^source_weights\.semantic: expected a number >= 0"):
        EngineConfig.from_dict({"source_weights": {"semantic": -1}})
    with pytest.raises(ConfigError, match=r"^colour: unknown configuration field"):
        EngineConfig.from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match=r"^half_life_days: expected a number > 0"):
        EngineConfig.from_dict({"half_life_days": 0})
    with pytest.raises(ConfigError, match=r"^source_weights: unknown source\(s\) \['magic'\]"):
        EngineConfig.from_dict({"source_weights": {"magic": 1.0}})
    with pytest.raises(ConfigError, match=r"^cold_collaborative: expected a number >= 0"):
        EngineConfig.from_dict({"cold_collaborative": -1})


def test_a_filter_that_empties_the_scored_head_is_backfilled_from_deeper_candidates():
    # 60 best-sellers in one category, then 20 less popular products in another.
    n_top, n_rest = 60, 20
    ids = list(range(1, n_top + n_rest + 1))
    users, items, types, times = [], [], [], []
    for pid in ids:
        buyers = 5 if pid <= n_top else 1
        for user in range(buyers):
            users.append(user)
            items.append(pid)
            types.append("purchase")
            times.append(NOW - DAY * pid)
    inter = interactions_from_records(
        user_ids=users, item_ids=items, event_types=types, timestamps=times, catalogue_ids=ids
    )
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    data = EngineData(
        item_ids=np.array(ids, dtype=np.int64),
        item_vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        has_vector=np.ones(len(ids), dtype=bool),
        item_titles=[f"product {pid}" for pid in ids],
        item_categories=["Top" if pid <= n_top else "Rest" for pid in ids],
        item_created_at=np.zeros(len(ids)),
        item_active=np.ones(len(ids), dtype=bool),
        interactions=inter,
    )
    engine = HybridEngine(EngineConfig(candidates_per_source=100)).fit(data, now=NOW)
    top = set(range(1, n_top + 1))

    def no_top(items):
        return [item for item in items if item.product_id not in top]

    listed = engine.recommend(History([], [], []), k=10, now=NOW, rules=[no_top])

    assert len(listed) == 10
    assert {item.product_id for item in listed} <= set(range(n_top + 1, n_top + n_rest + 1))


def test_a_loaded_engine_searches_through_the_ann_hook_and_never_builds_an_index(
    tmp_path, monkeypatch
):
    # Above the exact-search size, an engine loaded for serving must be given the serving
    # index: building an hnswlib index per web process would take minutes and gigabytes.
    import recommender.ml.engine.config as engine_module

    monkeypatch.setattr(engine_module, "EXACT_SEARCH_MAX", 3)
    fitted = HybridEngine(EngineConfig()).fit(_data(), now=NOW)
    loaded = HybridEngine.load(fitted.save(tmp_path / "engine.bin"))
    history = History(product_ids=[10], event_types=["view"], timestamps=[NOW])

    with pytest.raises(RuntimeError, match="searches through the ann hook"):
        loaded.recommend(history, k=3, now=NOW)

    def ann(query, n):
        scores = _vectors() @ query
        return sorted(zip(IDS, scores.tolist(), strict=True), key=lambda p: -p[1])[:n]

    offline = fitted.recommend(history, k=3, now=NOW)  # Offline: its own hnswlib index.
    assert loaded.recommend(history, k=3, now=NOW, ann=ann) == offline


def test_a_fit_records_the_seconds_of_each_part():
    engine = HybridEngine(EngineConfig()).fit(_data(), now=NOW)
    assert list(engine.fit_seconds) == [
        "cold_lookalikes",
        "popularity",
        "item_knn",
        "ease",
        "cooccurrence",
    ]
    assert all(seconds >= 0 for seconds in engine.fit_seconds.values())
    # Above the EASE limit there is no EASE part.
    knn = HybridEngine(EngineConfig()).fit(_data(), now=NOW, ease_max_items=0)
    assert "ease" not in knn.fit_seconds
    assert knn.collaborative_model == "item_knn"
