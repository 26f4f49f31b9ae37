"""Framework-free experiment analysis: assignment, attribution and statistics, with exact
expectations computed by hand."""

import math
from collections import Counter

import pytest

from experiments.analysis.assignment import assign, bucket
from experiments.analysis.attribution import Action, Shown, Windows, attribute
from experiments.analysis.stats import (
    Comparison,
    Estimate,
    Sums,
    compare,
    guardrail_state,
    ratio,
    srm,
)

# Assignment ---------------------------------------------------------------------------------


def test_a_visitor_always_gets_the_same_variant():
    first = [assign("salt-a", f"c:{i}", [50, 50]) for i in range(500)]
    again = [assign("salt-a", f"c:{i}", [50, 50]) for i in range(500)]

    assert first == again


def test_the_bucket_is_sha256_of_salt_and_visitor():
    import hashlib

    digest = hashlib.sha256(b"s1:c:42").digest()

    assert bucket("s1", "c:42") == int.from_bytes(digest[:8], "big") % 10_000


def test_shares_split_the_buckets_in_order():
    # 10% / 90%: buckets 0-999 go to the first variant.
    visitors = [f"c:{i}" for i in range(20_000)]
    for v in visitors[:200]:
        expected = 0 if bucket("s", v) < 1000 else 1
        assert assign("s", v, [10, 90]) == expected
    counts = Counter(assign("s", v, [10, 90]) for v in visitors)
    # Binomial(20000, 0.1): sd 42; 5 sd either side.
    assert 2000 - 212 < counts[0] < 2000 + 212


def test_two_experiments_assign_independently():
    visitors = [f"c:{i}" for i in range(20_000)]
    pairs = Counter((assign("one", v, [50, 50]), assign("two", v, [50, 50])) for v in visitors)

    # Independent halves: each of the four cells holds a quarter (sd 61; 5 sd either side).
    assert set(pairs) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for cell in pairs.values():
        assert 5000 - 306 < cell < 5000 + 306


def test_shares_that_do_not_sum_to_100_are_refused():
    # Shares of 40% leave buckets 4000-9999 to no variant.
    visitor = next(f"c:{i}" for i in range(1000) if bucket("s", f"c:{i}") >= 4000)

    with pytest.raises(ValueError, match="sum to 100, got 40"):
        assign("s", visitor, [20, 20])


# Attribution --------------------------------------------------------------------------------

H = 3600.0
SHOWN = [
    Shown("L1", "c:A", "control", 0.0, ("P1", "P2")),
    Shown("L2", "c:A", "control", 1 * H, ("P2", "P3")),
    Shown("L3", "c:B", "treatment", 0.0, ("P1",)),
]


def _attributed(*actions):
    return [
        (a.action.event_id, a.shown.recommendation_id if a.shown else None, a.rule)
        for a in attribute(SHOWN, actions, windows=Windows(click=24 * H, purchase=7 * 24 * H))
    ]


def test_the_latest_list_that_showed_the_product_wins():
    assert _attributed(Action("e1", ("c:A",), "P2", "click", 2 * H)) == [("e1", "L2", "window")]


def test_an_older_list_counts_when_only_it_showed_the_product():
    assert _attributed(Action("e2", ("c:A",), "P1", "click", 2 * H)) == [("e2", "L1", "window")]


def test_a_click_outside_its_window_counts_for_no_one_but_a_purchase_has_seven_days():
    late = 25 * H  # 24 h after L1 is 24 H.

    assert _attributed(
        Action("e3", ("c:A",), "P1", "click", late),
        Action("e4", ("c:A",), "P1", "purchase", late, revenue=9.5),
        Action("e5", ("c:A",), "P1", "purchase", 7 * 24 * H + 1),
    ) == [("e3", None, "none"), ("e4", "L1", "window"), ("e5", None, "none")]


def test_an_event_before_the_list_is_not_attributed_to_it():
    assert _attributed(Action("e6", ("c:A",), "P3", "purchase", 0.5 * H)) == [("e6", None, "none")]


def test_an_explicit_id_wins_over_visitor_product_and_time():
    assert _attributed(
        Action("e7", ("c:A",), "P9", "click", 100 * 24 * H, recommendation_id="L3"),
        Action("e8", ("c:A",), "P2", "click", 2 * H, recommendation_id="unknown-id"),
    ) == [("e7", "L3", "explicit"), ("e8", None, "none")]


def test_other_visitors_lists_and_uncounted_types_are_left_alone():
    assert _attributed(
        Action("e9", ("c:B",), "P2", "click", 2 * H),
        Action("e10", ("c:B",), "P1", "view", 2 * H),
        Action("e11", ("c:C", "s:S1"), "P1", "click", 2 * H),
        Action("e12", ("c:B",), "P1", "add_to_cart", 2 * H),
    ) == [("e9", None, "none"), ("e11", None, "none"), ("e12", "L3", "window")]


def test_an_event_at_the_edge_of_the_window_counts():
    assert _attributed(Action("e13", ("c:B",), "P1", "click", 24 * H)) == [("e13", "L3", "window")]


# Statistics ---------------------------------------------------------------------------------


def _sums(pairs):
    return Sums(
        n=len(pairs),
        x=sum(x for x, _ in pairs),
        xx=sum(x * x for x, _ in pairs),
        y=sum(y for _, y in pairs),
        yy=sum(y * y for _, y in pairs),
        xy=sum(x * y for x, y in pairs),
    )


def test_the_clustered_ratio_interval_by_hand():
    # Visitors (impressions, clicks): (1, 0), (2, 1), (3, 1). R = 2/6; mx = 2, my = 2/3;
    # vx = 1, vy = 1/3, cov = 1/2; Var(R) = (1/3 - 2(1/3)(1/2) + (1/9)(1)) / (3 * 4) = 1/108.
    estimate = ratio(_sums([(1, 0), (2, 1), (3, 1)]))

    se = math.sqrt(1 / 108)
    assert estimate.value == pytest.approx(1 / 3, rel=1e-12)
    assert estimate.se == pytest.approx(se, rel=1e-12)
    assert estimate.low == pytest.approx(1 / 3 - 1.959963984540054 * se, rel=1e-12)
    assert estimate.high == pytest.approx(1 / 3 + 1.959963984540054 * se, rel=1e-12)


def test_clustering_widens_the_interval_when_a_visitors_impressions_move_together():
    # Same totals (4 clicks in 8 impressions) twice: spread over visitors, and concentrated
    # in two heavy visitors who click everything or nothing.
    spread = ratio(_sums([(2, 1), (2, 1), (2, 1), (2, 1)]))
    lumped = ratio(_sums([(4, 4), (4, 0)]))

    assert spread.value == lumped.value == 0.5
    assert spread.se == 0.0
    # (vy - 2R cov + R^2 vx) / (n mx^2) = (8 - 0 + 0) / (2 * 16) = 1/4.
    assert lumped.se == pytest.approx(0.5, rel=1e-12)


def test_a_ratio_needs_two_visitors_for_an_interval():
    assert ratio(_sums([(3, 1)])) == Estimate(1 / 3, None, None, None)
    assert ratio(_sums([])) == Estimate(None, None, None, None)


def test_lift_and_z_test_by_hand():
    control, treatment = Estimate(0.1, 0.02, None, None), Estimate(0.12, 0.03, None, None)

    c = compare(treatment, control)

    # lift = 0.12/0.1 - 1; Var = 0.03^2/0.1^2 + 0.12^2 0.02^2 / 0.1^4 = 0.09 + 0.0576.
    assert c.lift == pytest.approx(0.2, rel=1e-12)
    assert c.low == pytest.approx(0.2 - 1.959963984540054 * math.sqrt(0.1476), rel=1e-12)
    assert c.high == pytest.approx(0.2 + 1.959963984540054 * math.sqrt(0.1476), rel=1e-12)
    z = 0.02 / math.sqrt(0.0013)
    assert c.z == pytest.approx(z, rel=1e-12)
    assert c.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert not c.significant


def test_a_clear_difference_is_significant():
    c = compare(Estimate(0.15, 0.01, None, None), Estimate(0.10, 0.01, None, None))

    # z = 0.05 / sqrt(0.0002) = 3.5355; p = erfc(2.5) = 0.000407.
    assert c.p_value == pytest.approx(math.erfc(2.5), rel=1e-12)
    assert c.significant


def test_srm_by_hand():
    # 45/55 of 1,000 against 50/50: chi2 = 2 * 50^2 / 500 = 10, p = erfc(sqrt(5)) = 0.00157.
    small = srm([450, 550], [50, 50])
    # 45/55 of 2,000: chi2 = 20, p = erfc(sqrt(10)) = 7.7e-6, below 0.001.
    large = srm([900, 1100], [50, 50])

    assert small.chi2 == pytest.approx(10.0, rel=1e-12)
    assert small.p_value == pytest.approx(math.erfc(math.sqrt(5)), rel=1e-9)
    assert not small.flagged
    assert large.chi2 == pytest.approx(20.0, rel=1e-12)
    assert large.p_value == pytest.approx(math.erfc(math.sqrt(10)), rel=1e-9)
    assert large.flagged
    assert not srm([500, 500], [50, 50]).flagged


def test_guardrail_states():
    def lift(value, low, high):
        return Comparison(value, low, high, None, None)

    assert guardrail_state(lift(-0.10, -0.15, -0.06), max_drop_pct=5) == "breached"
    assert guardrail_state(lift(-0.06, -0.12, 0.01), max_drop_pct=5) == "at risk"
    assert guardrail_state(lift(-0.01, -0.08, 0.06), max_drop_pct=5) == "ok"
    assert guardrail_state(lift(None, None, None), max_drop_pct=5) == "unknown"
