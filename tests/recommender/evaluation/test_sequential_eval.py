"""The sequential model in the offline protocols and the validation gate (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation.protocols import evaluate_cold_start, evaluate_leave_last_out
from recommender.evaluation.sequential import gate
from recommender.ml.engine import EngineConfig, EngineData, History, HybridEngine
from recommender.ml.interactions import interactions_from_records
from recommender.ml.sequential import SequentialConfig, fit_sequential

DAY = 86_400.0
N = 40
CONFIG = SequentialConfig(
    dim=16,
    layers=1,
    heads=1,
    max_len=8,
    dropout=0.0,
    max_epochs=8,
    patience=8,
    batch_size=32,
    learning_rate=5e-3,
)


def _chain_shop(customers: int = 160, seed: int = 0) -> EngineData:
    """Products come in chains: a customer who buys product p buys p + 1 next (mod N)."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for u in range(customers):
        start = int(rng.integers(0, N))
        for step in range(6):
            users.append(u)
            items.append(1 + (start + step) % N)
            stamps.append(float(u * DAY + step * 3600))
    ids = np.arange(1, N + 1, dtype=np.int64)
    vectors = rng.normal(size=(N, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    inter = interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(users),
        timestamps=stamps,
        catalogue_ids=ids,
    )
    return EngineData(
        item_ids=ids,
        item_vectors=vectors,
        has_vector=np.ones(N, dtype=bool),
        item_titles=[f"product {i}" for i in ids],
        item_categories=[f"c{i % 4}" for i in ids],
        item_created_at=np.zeros(N),
        item_active=np.ones(N, dtype=bool),
        interactions=inter,
    )


def test_leave_last_out_reports_sequential_and_the_hybrid_with_and_without_it() -> None:
    data = _chain_shop()
    report = evaluate_leave_last_out(data, config=EngineConfig(), ks=(10,), sequential=CONFIG)
    names = [r.name for r in report.results]
    assert names == [
        "popularity",
        "item_knn",
        "ease",
        "content",
        "hybrid",
        "sequential",
        "hybrid_sequential",
    ]
    metrics = {r.name: r.metrics for r in report.results}
    # The chain is an order a sequence model reads from the last product alone.
    assert metrics["sequential"]["recall@10"] >= 0.9
    assert metrics["hybrid_sequential"]["ndcg@10"] > metrics["hybrid"]["ndcg@10"]
    gated = report.notes["sequential_gate"]
    assert gated["hybrid_with_ndcg@10"] > gated["hybrid_without_ndcg@10"]
    assert report.notes["sequential"]["best_epoch"] >= 1


def test_cold_start_reports_the_same_models() -> None:
    data = _chain_shop(seed=1)
    report = evaluate_cold_start(data, config=EngineConfig(), ks=(10,), sequential=CONFIG)
    assert [r.name for r in report.results] == [
        "popularity",
        "content",
        "hybrid",
        "sequential",
        "hybrid_sequential",
    ]


def test_the_sequential_source_serves_with_its_own_reason() -> None:
    data = _chain_shop()
    model, _ = fit_sequential(
        data.interactions, vectors=data.item_vectors, config=CONFIG, device="cpu"
    )
    weights = {"collaborative": 0.0, "semantic": 0.0, "session": 0.0, "sequential": 1.0}
    engine = HybridEngine(EngineConfig(source_weights=weights)).fit(data, now=200 * DAY)
    served = engine.with_sequential(model)
    history = History(
        product_ids=[5, 6, 7],
        event_types=["purchase"] * 3,
        timestamps=[100 * DAY, 100 * DAY + 60, 100 * DAY + 120],
    )
    items = served.recommend(history, k=3, now=200 * DAY)
    assert items[0].product_id == 8
    assert items[0].sources == ("sequential",)
    assert items[0].reasons == ("often bought after product 7",)
    # Without a model the source proposes nothing.
    assert engine.recommend(history, k=3, now=200 * DAY) == []


def test_gate_says_whether_the_source_helps() -> None:
    data = _chain_shop()
    model, _ = fit_sequential(
        data.interactions, vectors=data.item_vectors, config=CONFIG, device="cpu"
    )
    result = gate(data, model, config=EngineConfig())
    assert result["customers"] == 160
    assert result["weight"] == pytest.approx(1.0)
    assert result["hybrid_with_ndcg@10"] > result["hybrid_without_ndcg@10"]


def test_both_arms_of_the_gate_share_one_index_of_the_engine_s_own(own_index_builds) -> None:
    # given: a catalogue above the exact search's limit, so that an engine without a search
    # builds an hnswlib index of its own vectors
    data = _chain_shop()
    model, _ = fit_sequential(
        data.interactions, vectors=data.item_vectors, config=CONFIG, device="cpu"
    )
    built = own_index_builds(N // 2)

    # when
    result = gate(data, model, config=EngineConfig())

    # then: one index for both arms (the arm with the sequential source is a copy of the
    # engine), over the whole catalogue, and the same verdict as the exact search's
    assert built == [N]
    assert result["hybrid_with_ndcg@10"] > result["hybrid_without_ndcg@10"]
