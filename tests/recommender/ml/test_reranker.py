"""The learned reranker: its features come from the candidate set alone, it only reorders (the
blend's scores keep their distribution), it travels inside the engine artifact, and a shop too
small to learn from keeps the linear blend."""

import lightgbm
import numpy as np
import pytest

from recommender.evaluation.reranker_training import MIN_QUERIES, learn_reranker
from recommender.ml.engine import EngineConfig, History, HybridEngine
from recommender.ml.engine.reranker import (
    FEATURE_SOURCES,
    FEATURES,
    Reranker,
    candidate_features,
)
from recommender.ranking.fusion import normalise
from tests.recommender.ml.test_engine import NOW, _data

INK_BUYER = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - 86_400.0])


@pytest.fixture
def engine():
    return HybridEngine(EngineConfig()).fit(_data(), now=NOW)


def test_features_are_one_row_per_admitted_candidate(engine):
    cset = engine.candidates(INK_BUYER, now=NOW)
    fused = engine.fuse(cset)

    features = candidate_features(engine, cset, fused.positions, fused.total)

    assert features.shape == (len(fused.positions), len(FEATURES))
    column = {name: features[:, i] for i, name in enumerate(FEATURES)}
    # The blend's rank: 1 for its best candidate, in the blend's order.
    assert column["blend_rank"][fused.order].tolist() == list(range(1, len(fused.positions) + 1))
    assert column["blend"].tolist() == pytest.approx(fused.total.tolist())
    # The customer's whole history is in Office: Office candidates have share 1, others 0.
    rows = cset.rows[fused.positions]
    office = np.array([engine.category_of(int(r)) == "Office" for r in rows])
    assert column["category_share"][office].tolist() == [1.0] * int(office.sum())
    assert column["category_share"][~office].tolist() == [0.0] * int((~office).sum())
    assert column["history_length"].tolist() == pytest.approx([np.log1p(1)] * len(rows))


def test_each_source_s_columns_are_its_normalised_score_and_its_rank(engine):
    cset = engine.candidates(INK_BUYER, now=NOW)
    fused = engine.fuse(cset)
    n = len(fused.positions)
    assert n > 2

    features = candidate_features(engine, cset, fused.positions, fused.total)

    scored = 0
    for source in FEATURE_SOURCES:
        raw = cset.raw.get(source)
        values = np.zeros(n) if raw is None else normalise(raw[fused.positions])
        order = np.argsort(-values, kind="stable")
        rank = np.empty(n)
        rank[order] = np.arange(1, n + 1)
        expected_rank = np.where(values > 0, np.log1p(rank), np.log1p(n + 1))
        assert features[:, FEATURES.index(f"{source}_score")].tolist() == (
            values.astype(np.float32).tolist()
        )
        assert features[:, FEATURES.index(f"{source}_rank")].tolist() == (
            expected_rank.astype(np.float32).tolist()
        )
        scored += int(values.any())
    assert scored >= 2  # Several sources scored these candidates, and some did not.
    assert scored < len(FEATURE_SOURCES)


def _model_preferring(feature: str) -> str:
    """A LambdaRank model that ranks by one feature, trained on random rows."""
    rng = np.random.default_rng(0)
    x = rng.random((400, len(FEATURES))).astype(np.float32)
    y = (x[:, FEATURES.index(feature)] > 0.7).astype(int)
    params = {"objective": "lambdarank", "verbose": -1, "min_data_in_leaf": 5, "num_threads": 1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, label=y, group=[20] * 20), 20)
    return booster.model_to_string()


def test_rescore_reorders_but_keeps_the_blend_s_scores(engine):
    cset = engine.candidates(INK_BUYER, now=NOW)
    fused = engine.fuse(cset)
    before = sorted(fused.total.tolist(), reverse=True)
    reranker = Reranker(_model_preferring("age_days"), {})
    # What the model saw: the features before the rescoring (it hands the blend's scores out
    # anew, so features read afterwards differ in "blend" and "blend_rank").
    features = candidate_features(engine, cset, fused.positions, fused.total)

    reranker.rescore(engine, fused)

    # The same scores, handed out in the model's order
    assert sorted(fused.total.tolist(), reverse=True) == before
    assert fused.total[fused.order].tolist() == before
    predicted = reranker.predict(features)
    assert np.all(np.diff(predicted[fused.order]) <= 0)


def test_the_reranker_travels_inside_the_engine_artifact(engine, tmp_path):
    engine.reranker = Reranker(_model_preferring("popularity"), {"verdict": "test"})
    expected = engine.recommend(INK_BUYER, k=3, now=NOW)

    loaded = HybridEngine.load(engine.save(tmp_path / "e.engine"))

    assert loaded.reranker is not None
    assert loaded.reranker.note == {"verdict": "test"}
    assert [i.product_id for i in loaded.recommend(INK_BUYER, k=3, now=NOW)] == [
        i.product_id for i in expected
    ]


def test_a_reranker_saved_with_other_features_is_refused():
    with pytest.raises(ValueError, match="saved with other features; refit the engine"):
        Reranker.from_dict({"model": "", "features": ["something else"]})


def test_a_shop_too_small_to_learn_from_keeps_the_linear_blend():
    reranker, note = learn_reranker(_data(), config=EngineConfig())

    assert reranker is None
    assert note["verdict"] == (
        f"kept the linear blend: {note['validation_customers']} validation customers, at "
        f"least {MIN_QUERIES} are needed to learn a reranker"
    )
