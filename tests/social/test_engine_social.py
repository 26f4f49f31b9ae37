"""The engine's social source, framework-free: exact two-hop scores, tie strength, recency,
bounded candidates, reasons that count people and never name them by default."""

import math

import numpy as np
import pytest

from recommender.ml.engine import (
    ConfigError,
    EngineConfig,
    EngineData,
    History,
    HybridEngine,
    NetworkMember,
    social_proof,
)
from recommender.ml.engine.social import TIE_FLOOR, social_scores, tie_strength, tie_strengths
from recommender.ml.interactions import interactions_from_records

DAY = 86_400.0
NOW = 100 * DAY
IDS = [10, 11, 12, 20, 21]
CONFIG = EngineConfig(
    source_weights={"social": 1.0},
    behaviour_weights={"purchase": 1.0, "view": 0.2},
    social_hop_decay=0.5,
    social_half_life_days=10.0,
)


def _engine(config: EngineConfig = CONFIG) -> HybridEngine:
    raw = np.eye(5, 3, dtype=np.float32) + 0.1
    vectors = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    inter = interactions_from_records(
        user_ids=[1, 1, 2], item_ids=[10, 11, 20], event_types=["purchase"] * 3,
        timestamps=[DAY, DAY, 2 * DAY], catalogue_ids=IDS,
    )  # fmt: skip
    data = EngineData(
        item_ids=np.array(IDS, dtype=np.int64), item_vectors=vectors,
        has_vector=np.ones(5, dtype=bool), item_titles=[f"P{i}" for i in IDS],
        item_categories=["A"] * 5, item_created_at=np.zeros(5), item_active=np.ones(5, dtype=bool),
        interactions=inter,
    )  # fmt: skip
    return HybridEngine(config).fit(data, now=NOW)


def _member(customer_id, hop, weight, events, relation="follows", name=""):
    return NetworkMember(
        customer_id=customer_id, hop=hop, weight=weight, relation=relation,
        product_ids=[p for p, _, _ in events], event_types=[k for _, k, _ in events],
        timestamps=[t for _, _, t in events], display_name=name,
    )  # fmt: skip


# The customer bought 10. A (followed, weight 2) bought 10 and 11 and viewed 12 ten days ago;
# B (second hop, path weight 0.5) bought 11 ten days ago and 20 just now, and 21 tomorrow.
A = _member(101, 1, 2.0, [(10, "purchase", NOW - 2 * DAY), (11, "purchase", NOW),
                          (12, "view", NOW - 10 * DAY)])  # fmt: skip
B = _member(102, 2, 0.5, [(11, "purchase", NOW - 10 * DAY), (20, "purchase", NOW),
                          (21, "purchase", NOW + DAY)])  # fmt: skip
HISTORY = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY],
                  network=(A, B))  # fmt: skip


def test_tie_strength_is_the_floor_plus_the_cosine_overlap():
    assert tie_strength(set(), {1, 2}) == TIE_FLOOR
    assert tie_strength({1}, {2}) == TIE_FLOOR
    assert tie_strength({1}, {1, 2, 3}) == pytest.approx(TIE_FLOOR + 1 / math.sqrt(3))
    assert tie_strength({1, 2}, {1, 2}) == pytest.approx(TIE_FLOOR + 1.0)


def test_two_hops_with_decay_give_exact_scores():
    scores = _engine().source_scores(HISTORY, now=NOW)["social"]
    tie_a = 0.5 + 1 / math.sqrt(3)  # A shares 10 with the customer, of A's three products.
    tie_b = 0.5  # B shares nothing.
    a = 1.0 * 2.0 * tie_a  # hop 1, weight 2
    b = 0.5 * 0.5 * tie_b  # hop decay 0.5, path weight 0.5
    expected = {
        11: a * 1.0 + b * 0.5,  # A bought it now; B ten days (one half-life) ago.
        12: a * 0.2 * 0.5,  # A viewed it a half-life ago.
        20: b * 1.0,  # B bought it now.
    }
    # 10 is bought already (excluded); 21 was bought after now: never seen.
    assert {pid: scores[pid] for pid in expected} == pytest.approx(expected, rel=1e-12)
    assert 21 not in scores or scores[21] == 0.0
    ranked = _engine().recommend(HISTORY, k=5, now=NOW)
    assert [item.product_id for item in ranked] == [11, 12, 20]
    assert all(item.sources == ("social",) for item in ranked)


def test_the_tie_strength_floor_is_a_setting():
    engine = _engine(CONFIG.replace(social_tie_floor=0.1))
    scores = engine.source_scores(HISTORY, now=NOW)["social"]
    a = 2.0 * (0.1 + 1 / math.sqrt(3))
    b = 0.5 * 0.5 * 0.1
    assert tie_strength({1}, {2}, 0.1) == 0.1
    assert {pid: scores[pid] for pid in (11, 12, 20)} == pytest.approx(
        {11: a + b * 0.5, 12: a * 0.2 * 0.5, 20: b}, rel=1e-12
    )


@pytest.mark.parametrize("floor", [0, -0.5, float("inf"), "1", True])
def test_the_tie_strength_floor_must_be_above_zero(floor):
    with pytest.raises(ConfigError, match=r"^social_tie_floor: expected a number > 0, got "):
        CONFIG.replace(social_tie_floor=floor)


def test_hop_decay_zero_ignores_the_second_hop():
    engine = _engine(CONFIG.replace(social_hop_decay=0.0))
    ranked = engine.recommend(HISTORY, k=5, now=NOW)
    assert [item.product_id for item in ranked] == [11, 12]


def test_reasons_count_people_and_never_name_them_by_default():
    named = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY],
                    network=(A, B))  # fmt: skip
    reasons = {item.product_id: item.reasons for item in _engine().recommend(named, k=5, now=NOW)}
    assert reasons == {
        11: ("1 person you follow bought this",),
        12: ("1 person you follow looked at this",),
        20: ("1 person in your network bought this",),
    }
    for texts in reasons.values():
        assert "101" not in " ".join(texts)
        assert "102" not in " ".join(texts)


def test_reasons_name_people_only_when_the_network_carries_names():
    ann = _member(103, 1, 1.0, [(11, "purchase", NOW)], name="Ann")
    bob = _member(104, 1, 1.0, [(11, "purchase", NOW)], relation="trusts")
    history = History(network=(A, ann, bob))
    items = _engine().recommend(history, k=1, now=NOW)
    assert items[0].product_id == 11
    # Three direct members with two relation types: "people in your network"; one name given.
    # (Without a history of its own the customer also gets the cold blend: popularity.)
    assert items[0].reasons == (
        "Ann and 2 other people in your network bought this",
        "popular in A",
    )


def test_a_customer_without_history_gets_their_networks_products():
    history = History(network=(A,))
    ranked = _engine(CONFIG.replace(source_weights={"social": 1.0, "popularity": 0.1}))
    items = ranked.recommend(history, k=3, now=NOW)
    assert items[0].product_id == 11
    assert "social" in items[0].sources


def test_no_network_means_no_social_candidates():
    history = History(product_ids=[10], event_types=["purchase"], timestamps=[NOW - DAY])
    cset = _engine().candidates(history, now=NOW)
    assert cset.weights["social"] == 0.0
    assert "social" not in cset.raw


def test_social_proof_counts_direct_members_up_to_now():
    counts = social_proof((A, B, _member(105, 1, 1.0, [(11, "view", NOW + DAY)])), [11, 12, 20],
                          now=NOW)  # fmt: skip
    assert counts == {11: 1, 12: 1, 20: 0}


def test_network_member_is_checked():
    with pytest.raises(ValueError, match="hop"):
        _member(1, 3, 1.0, [])
    with pytest.raises(ValueError, match="weight"):
        _member(1, 1, -1.0, [])


def test_each_candidate_names_its_supporters_in_network_order():
    engine = _engine()
    found = social_scores(engine, HISTORY.network, [10], now=NOW)
    row = {pid: int(engine._rows_of(np.array([pid]))[0]) for pid in IDS}
    # A (position 0) bought 10 and 11 and viewed 12; B (1) bought 11 and 20 (21: after now).
    assert found.supporters.get(row[10]) == [(0, "purchase")]
    assert found.supporters.get(row[11]) == [(0, "purchase"), (1, "purchase")]
    assert found.supporters.get(row[12]) == [(0, "view")]
    assert found.supporters.get(row[20]) == [(1, "purchase")]
    assert found.supporters.get(row[21]) == []
    assert [int(r) for r in found.rows] == sorted(row[p] for p in (10, 11, 12, 20))


def test_the_tie_strengths_of_a_network_equal_each_member_s_own():
    # Many members with repeated products, some sharing the customer's, one with none at all.
    rng = np.random.default_rng(0)
    own = [int(p) for p in rng.integers(0, 40, size=15)]
    members = [
        _member(200 + i, 1, 1.0, [(int(p), "view", NOW) for p in rng.integers(0, 40, size=n)])
        for i, n in enumerate([0, 1, 5, 20, 20, 3, 12])
    ]
    lengths = [len(m.product_ids) for m in members]
    member = np.repeat(np.arange(len(members)), lengths)
    pids = np.array([p for m in members for p in m.product_ids], dtype=np.int64)
    for floor in (0.5, 2.0):
        expected = [tie_strength(set(own), set(m.product_ids), floor) for m in members]
        assert tie_strengths(member, pids, own, len(members), floor).tolist() == expected
        assert tie_strengths(member, pids, [], len(members), floor).tolist() == [floor] * 7
