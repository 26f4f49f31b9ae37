"""The social source under evaluation: networks as of the held-out moment (no later event of a
member is seen), the second hop, segments with exact metrics, and the protocol's models."""

import numpy as np
import pytest

from recommender.evaluation.protocols import evaluate_leave_last_out
from recommender.evaluation.social import (
    SOCIAL_WEIGHT_GRID,
    Networks,
    SocialGraph,
    history_cut,
    segment_metrics,
    tune_social,
)
from recommender.ml.engine import EngineConfig, EngineData, HybridEngine
from recommender.ml.interactions import interactions_from_records

DAY = 86_400.0


def _graph(edges):
    return SocialGraph(
        source=np.array([e[0] for e in edges], dtype=np.int64),
        target=np.array([e[1] for e in edges], dtype=np.int64),
        weight=np.array([e[2] for e in edges], dtype=np.float64),
        relation=[e[3] for e in edges],
    )


def _inter(rows, catalogue):
    return interactions_from_records(
        user_ids=[r[0] for r in rows], item_ids=[r[1] for r in rows],
        event_types=["purchase"] * len(rows), timestamps=[r[2] for r in rows],
        catalogue_ids=catalogue,
    )  # fmt: skip


def test_a_network_sees_only_what_its_members_did_before_the_moment():
    inter = _inter(
        [(1, 10, DAY), (2, 11, DAY), (2, 12, 5 * DAY), (3, 13, 2 * DAY)], [10, 11, 12, 13]
    )
    user_events = {u: np.flatnonzero(inter.user_idx == u) for u in range(3)}
    graph = _graph([(1, 2, 2.0, "trusts"), (2, 3, 0.5, "follows"), (2, 1, 1.0, "follows"),
                    (9, 1, 1.0, "follows")])  # fmt: skip
    networks = Networks(graph, inter, user_events)
    members = networks.network(0, before=5 * DAY)  # Customer 1, before day 5.
    assert [(m.customer_id, m.hop, m.weight, m.relation) for m in members] == [
        (2, 1, 2.0, "trusts"),
        (3, 2, 1.0, "trusts"),  # Through 2: 2.0 x 0.5, on the customer's own (trusts) edge.
    ]
    assert list(members[0].product_ids) == [11]  # 12 was bought on day 5: not yet.
    assert list(members[1].product_ids) == [13]
    assert networks.has_edges(0)
    assert not networks.has_edges(2)  # Customer 3 relates to nobody; 9 has no events.


def test_segment_metrics_are_exact():
    ranks = {"hybrid": {0: 1, 1: 3, 2: None}, "social_only": {0: None, 1: 1, 2: 2}}
    segments = {"with_relationships": {0, 1}, "without_relationships": {2}, "few_events": set()}
    out = segment_metrics(ranks, segments, [10])
    assert out["with_relationships"]["models"]["hybrid"] == {
        "recall@10": 1.0, "ndcg@10": round((1 + 0.5) / 2, 5), "mrr": round((1 + 1 / 3) / 2, 5),
        "users": 2,
    }  # fmt: skip
    assert out["without_relationships"]["models"]["social_only"]["ndcg@10"] == round(
        1 / np.log2(3), 5
    )
    assert out["few_events"] == {"users": 0, "models": {
        "hybrid": {"recall@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0, "users": 0},
        "social_only": {"recall@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0, "users": 0},
    }}  # fmt: skip


@pytest.fixture
def trusting_shop():
    """Pairs of customers: a follower who trusts a leader buys what the leader bought a day
    later. The leader's last product (their held-out one) is one the follower never buys, so
    the follower's held-out product is in the leader's training history, a day before."""
    rows, edges, catalogue = [], [], list(range(100, 140))
    for pair in range(10):
        leader, follower = 2 * pair + 1, 2 * pair + 2
        items = [100 + (4 * pair + j) % 40 for j in range(4)]
        for j, item in enumerate(items):
            rows.append((leader, item, (10 * j + 1) * DAY))
            rows.append((follower, item, (10 * j + 2) * DAY))
        rows.append((leader, 100 + (4 * pair + 4) % 40, 50 * DAY))
        edges.append((follower, leader, 1.0, "trusts"))
    inter = _inter(rows, catalogue)
    n = len(catalogue)
    data = EngineData(
        item_ids=np.array(catalogue, dtype=np.int64), item_vectors=np.zeros((n, 4), np.float32),
        has_vector=np.zeros(n, dtype=bool), item_titles=[str(c) for c in catalogue],
        item_categories=[""] * n, item_created_at=np.zeros(n), item_active=np.ones(n, dtype=bool),
        interactions=inter,
    )  # fmt: skip
    return data, _graph(edges)


def test_the_protocol_reports_the_social_models_and_segments(trusting_shop):
    data, graph = trusting_shop
    report = evaluate_leave_last_out(data, config=EngineConfig(), ks=(10,), graph=graph)
    models = report.to_dict()["models"]
    assert {"hybrid", "hybrid_without_social", "social_only"} <= set(models)
    # Every follower's held-out product was bought by the one they trust the day before.
    social = report.segments["with_relationships"]
    assert social["users"] == 10
    assert social["models"]["social_only"]["recall@10"] == 1.0
    assert report.segments["without_relationships"]["users"] == 10
    assert report.segments["without_relationships"]["models"]["social_only"]["recall@10"] == 0.0
    assert report.notes["share_with_relationships"] == 0.5
    # Each follower has three training events: cut to the newest three, nothing changes.
    simulated = report.segments["few_events_simulated"]
    assert simulated["users"] == 10
    assert simulated["models"] == {
        name: social["models"][name]
        for name in ("item_knn", "hybrid", "hybrid_without_social", "social_only")
    }


def test_history_cut_keeps_the_newest_events_of_the_chosen_customers():
    events = {0: np.array([4, 7, 9, 12, 15]), 1: np.array([1, 2, 3, 5]), 2: np.array([6])}
    cut = history_cut(events, {0, 2, 5})
    assert {u: e.tolist() for u, e in cut.items()} == {0: [9, 12, 15], 1: [1, 2, 3, 5], 2: [6]}
    assert events[0].tolist() == [4, 7, 9, 12, 15]  # The original is left alone.


def test_without_relationships_the_report_is_as_before(trusting_shop):
    data, _ = trusting_shop
    report = evaluate_leave_last_out(data, config=EngineConfig(), ks=(10,))
    assert "segments" not in report.to_dict()
    assert "hybrid_without_social" not in report.to_dict()["models"]


@pytest.fixture
def long_memory_shop():
    """Followers whose validation product (the second-to-last) is one the person they trust
    bought 500 days before, while that person viewed another product the day before: with the
    default half-life of 180 days the recent view (0.2 x ~1) outranks the old purchase
    (1 x 0.5 ** (500 / 180) = 0.146); from 365 days on (0.387) the purchase comes first.
    Nobody else shares the followers' products, so the social source alone ranks them."""
    rows, edges = [], []
    for pair in range(3):
        leader, follower, base = 10 * pair + 1, 10 * pair + 2, 100 + 10 * pair
        a, b, target, recent, test = base, base + 1, base + 2, base + 3, base + 4
        rows += [(leader, target, 1 * DAY), (follower, a, 400 * DAY), (follower, b, 401 * DAY),
                 (follower, target, 501 * DAY), (follower, test, 600 * DAY)]  # fmt: skip
        edges.append((follower, leader, 1.0, "trusts"))
        rows.append((leader, recent, 500 * DAY))
    catalogue = sorted({r[1] for r in rows})
    kinds = ["view" if r[1] % 10 == 3 else "purchase" for r in rows]
    inter = interactions_from_records(
        user_ids=[r[0] for r in rows], item_ids=[r[1] for r in rows], event_types=kinds,
        timestamps=[r[2] for r in rows], catalogue_ids=catalogue,
    )  # fmt: skip
    n = len(catalogue)
    data = EngineData(
        item_ids=np.array(catalogue, dtype=np.int64), item_vectors=np.zeros((n, 4), np.float32),
        has_vector=np.zeros(n, dtype=bool), item_titles=[str(c) for c in catalogue],
        item_categories=[""] * n, item_created_at=np.zeros(n), item_active=np.ones(n, dtype=bool),
        interactions=inter,
    )  # fmt: skip
    return data, _graph(edges)


def test_social_settings_are_chosen_on_validation(long_memory_shop):
    data, graph = long_memory_shop
    config = EngineConfig()

    def fit(train):
        return HybridEngine(config).fit(train, now=float(train.interactions.timestamp.max()))

    tuned, rows = tune_social(data, config=config, graph=graph, engine_for=fit)
    # The first half-life that puts the old purchase first, at the smallest social weight: the
    # social source alone ranks these customers, so any positive weight ranks them the same.
    assert tuned == config.replace(
        social_half_life_days=365.0, source_weights={**config.source_weights, "social": 0.05}
    )
    second = 1 / np.log2(3)
    assert [(r["setting"], r["value"], r["social"], r["ndcg@10"], r["users"]) for r in rows] == [
        ("social_half_life_days", 180.0, 0.05, round(second, 5), 3),
        ("social_half_life_days", 30.0, 0.05, round(second, 5), 3),
        ("social_half_life_days", 90.0, 0.05, round(second, 5), 3),
        ("social_half_life_days", 365.0, 0.05, 1.0, 3),
        ("social_half_life_days", 1095.0, 0.05, 1.0, 3),
        ("social_half_life_days", 3650.0, 0.05, 1.0, 3),
        # Nobody is two hops away, and every tie is at the floor: nothing changes.
        *(("social_hop_decay", v, 0.05, 1.0, 3) for v in (0.0, 0.25, 1.0)),
        *(("social_tie_floor", v, 0.05, 1.0, 3) for v in (0.1, 0.25, 1.0, 2.0)),
    ]
    assert rows[0]["by_weight"] == [0.0] + [round(second, 5)] * (len(SOCIAL_WEIGHT_GRID) - 1)


def test_the_protocol_evaluates_the_social_settings_chosen_on_validation(long_memory_shop):
    data, graph = long_memory_shop
    report = evaluate_leave_last_out(
        data, config=EngineConfig(), ks=(10,), graph=graph, tune_social=True
    )
    assert report.notes["social_weight"] == 0.05
    assert report.notes["social_settings"] == {
        "social_half_life_days": 365.0, "social_hop_decay": 0.5, "social_tie_floor": 0.5,
    }  # fmt: skip
    assert report.notes["social_config"]["social_half_life_days"] == 365.0
    assert report.config == EngineConfig().to_dict()  # The configuration as given.
