"""The social source under evaluation: networks as of the held-out moment (no later event of a
member is seen), the second hop, segments with exact metrics, and the protocol's models."""

import numpy as np
import pytest

from recommender.evaluation.protocols import evaluate_leave_last_out
from recommender.evaluation.social import Networks, SocialGraph, segment_metrics
from recommender.ml.engine import EngineConfig, EngineData
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


def test_without_relationships_the_report_is_as_before(trusting_shop):
    data, _ = trusting_shop
    report = evaluate_leave_last_out(data, config=EngineConfig(), ks=(10,))
    assert "segments" not in report.to_dict()
    assert "hybrid_without_social" not in report.to_dict()["models"]
