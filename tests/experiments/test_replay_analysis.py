"""The replay simulator's framework-free parts: visits, what a replayed list records, and the
A/A calibration of the statistics (experiments.analysis.replay)."""

import numpy as np
import pytest

from experiments.analysis import stats
from experiments.analysis.assignment import assign
from experiments.analysis.replay import (
    ReplayedEvent,
    Touch,
    Visit,
    VisitorTotals,
    aa_calibration,
    recorded,
    split_sums,
    visits_of,
)

MINUTE = 60.0


def ev(customer, product, event_type, minute, value=0.0):
    return ReplayedEvent(customer, product, event_type, 1_000_000.0 + minute * MINUTE, value)


def test_visits_split_at_pauses_longer_than_the_gap_and_sum_each_products_touches():
    events = [
        # Out of order on purpose: visits_of sorts each customer's events.
        ev("B", "P1", "view", 5),
        ev("A", "P2", "purchase", 10, 4.5),
        ev("A", "P1", "view", 0),
        ev("A", "P2", "view", 20),
        ev("A", "P2", "purchase", 25, 3.0),
        ev("A", None, "search", 40),  # 15 minutes after the last: same visit, touches nothing
        ev("A", "P3", "add_to_cart", 71),  # 31 minutes later: a new visit
        ev("B", "P1", "view", 35),  # exactly the gap after the last: the same visit
    ]

    visits = visits_of(events, gap=30 * MINUTE)

    base = 1_000_000.0
    assert visits == [
        Visit(
            customer="A",
            start=base,
            end=base + 40 * MINUTE,
            touches=(
                Touch("P1", base, carted=False, purchased=False, revenue=0.0),
                Touch("P2", base + 10 * MINUTE, carted=True, purchased=True, revenue=7.5),
            ),
        ),
        Visit(
            customer="B",
            start=base + 5 * MINUTE,
            end=base + 35 * MINUTE,
            touches=(Touch("P1", base + 5 * MINUTE),),
        ),
        Visit(
            customer="A",
            start=base + 71 * MINUTE,
            end=base + 71 * MINUTE,
            touches=(Touch("P3", base + 71 * MINUTE, carted=True),),
        ),
    ]
    assert visits[0].visitor == "c:A"


def test_a_gap_must_be_positive():
    with pytest.raises(ValueError, match="gap: a positive number of seconds"):
        visits_of([], gap=0)


def test_a_list_records_a_click_for_each_listed_product_touched_and_carts_and_purchases():
    visit = Visit(
        customer="A",
        start=100.0,
        end=500.0,
        touches=(
            Touch("P1", 110.0),
            Touch("P2", 120.0, carted=True, purchased=True, revenue=12.5),
            Touch("P3", 130.0, carted=True),
            Touch("P4", 140.0, carted=True, purchased=True, revenue=99.0),
        ),
    )

    got = recorded(recommendation_id="r1", product_ids=["P3", "P2", "P1", "P9"], visit=visit)

    assert [(a.product_id, a.event_type, a.at, a.revenue) for a in got.actions] == [
        ("P1", "click", 110.0, 0.0),
        ("P2", "click", 120.0, 0.0),
        ("P2", "add_to_cart", 120.0, 0.0),
        ("P2", "purchase", 120.0, 12.5),
        ("P3", "click", 130.0, 0.0),
        ("P3", "add_to_cart", 130.0, 0.0),
    ]
    assert {a.recommendation_id for a in got.actions} == {"r1"}
    assert {a.visitors for a in got.actions} == {("c:A",)}
    assert got.missed == 1  # P4 was bought, but the list did not show it.


def test_an_empty_list_records_nothing_and_misses_every_touched_product():
    visit = Visit("A", 0.0, 0.0, (Touch("P1", 0.0), Touch("P2", 0.0, carted=True)))
    got = recorded(recommendation_id="r", product_ids=[], visit=visit)
    assert got.actions == ()
    assert got.missed == 2


def visitors_uniform(n):
    return [VisitorTotals(f"c:{i}", 2.0, {"clicks": 1.0}) for i in range(n)]


def test_a_split_sums_each_variants_visitors_by_the_serving_assignment():
    visitors = [
        VisitorTotals("c:a", 2.0, {"clicks": 1.0}),
        VisitorTotals("c:b", 3.0, {"clicks": 0.0}),
        VisitorTotals("c:c", 1.0, {"clicks": 1.0}),
        VisitorTotals("c:d", 4.0, {"clicks": 2.0}),
    ]
    groups = {v.visitor: assign("s", v.visitor, (50, 50)) for v in visitors}

    sums = split_sums(visitors, salt="s", shares=(50, 50), column="clicks")

    for index in (0, 1):
        mine = [v for v in visitors if groups[v.visitor] == index]
        x = [v.impressions for v in mine]
        y = [v.values["clicks"] for v in mine]
        assert sums[index] == stats.Sums(
            len(mine),
            sum(x),
            sum(a * a for a in x),
            sum(y),
            sum(b * b for b in y),
            sum(a * b for a, b in zip(x, y, strict=True)),
        )


def test_identical_visitors_are_never_significant_and_a_45_55_split_of_4000_always_flags_srm():
    found = aa_calibration(visitors_uniform(4000), columns=["clicks"], runs=20, seed="t")

    assert found.runs == 20
    assert found.visitors == 4000
    # Every visitor has the same ratio: no variance, so no test can call a difference.
    assert found.significant == {"clicks": 0}
    # 45/55 of 4,000 is about 1,800/2,200: chi-square about 40 against 50/50, far beyond 0.001.
    assert found.srm_flagged_when_skewed == 20


def test_a_a_on_heavy_tailed_visitors_is_significant_in_about_alpha_of_the_splits():
    # Visitors with very different numbers of lists and clicks (the clustering matters): a
    # calibrated test calls 2-8% of 200 A/A splits significant at alpha = 0.05.
    rng = np.random.default_rng(7)
    impressions = rng.geometric(0.3, size=3000).astype(float)
    propensity = rng.beta(0.5, 4.0, size=3000)
    clicks = rng.binomial(impressions.astype(int), propensity).astype(float)
    visitors = [VisitorTotals(f"c:{i}", impressions[i], {"clicks": clicks[i]}) for i in range(3000)]

    found = aa_calibration(visitors, columns=["clicks"], runs=200, seed="calibration")

    assert 4 <= found.significant["clicks"] <= 16
    assert len(found.p_values["clicks"]) == 200
    # On 50/50 splits the SRM check (p < 0.001) stays quiet.
    assert found.srm_false_alarms <= 2


def test_runs_must_be_positive():
    with pytest.raises(ValueError, match="runs: at least 1"):
        aa_calibration([], columns=["clicks"], runs=0, seed="s")
