"""The two mechanisms of privacy-safe aggregates (privacy/aggregates.py): k-suppression with
complementary suppression, and the Laplace mechanism's calibration."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from privacy.aggregates import (
    SUPPRESSED,
    Cell,
    LaplaceQuery,
    epsilon_split,
    k_suppress,
    laplace_noise,
    laplace_release,
    noise_generator,
)

# k-suppression --------------------------------------------------------------------------------


def _shown(table):
    return {group: cell.text for group, cell in table.cells.items()}


def test_groups_below_k_are_suppressed_and_groups_of_exactly_k_are_shown():
    table = k_suppress({"low": 5, "medium": 12, "high": 30}, k=5)

    assert _shown(table) == {"low": "5", "medium": "12", "high": "30"}
    assert table.total == Cell(47, "47")
    assert table.below_k == table.complementary == frozenset()


def test_a_group_of_k_minus_one_is_suppressed_and_says_so_never_its_figure():
    table = k_suppress({"low": 40, "medium": 4, "high": 9}, k=5)

    # medium (4) is below k; high, the smallest shown group, is withheld with it so that the
    # total does not give medium back; every withheld cell reads the same.
    assert _shown(table) == {"low": "40", "medium": SUPPRESSED, "high": SUPPRESSED}
    assert table.cells["medium"] == Cell(None, "suppressed")
    assert table.total == Cell(53, "53")
    assert (table.below_k, table.complementary) == ({"medium"}, {"high"})


def test_an_empty_group_is_suppressed_too_and_the_earlier_of_equal_groups_is_withheld():
    table = k_suppress({"a": 0, "b": 10, "c": 10}, k=5)

    assert _shown(table) == {"a": SUPPRESSED, "b": SUPPRESSED, "c": "10"}
    assert table.total.value == 20


def test_small_groups_whose_union_is_small_take_a_larger_one_with_them():
    # medium + high = 3 would be a group of 3 revealed exactly; low goes too, the total stays.
    table = k_suppress({"low": 100, "medium": 2, "high": 1}, k=5)

    assert _shown(table) == {"low": SUPPRESSED, "medium": SUPPRESSED, "high": SUPPRESSED}
    assert table.total == Cell(103, "103")


def test_a_population_below_k_shows_nothing_not_even_its_total():
    table = k_suppress({"low": 2, "medium": 1, "high": 1}, k=5)

    assert _shown(table) == dict.fromkeys(("low", "medium", "high"), SUPPRESSED)
    assert table.total == Cell(None, SUPPRESSED)


def test_two_small_groups_that_together_reach_k_need_no_third():
    table = k_suppress({"a": 3, "b": 4, "c": 50}, k=5)

    assert _shown(table) == {"a": SUPPRESSED, "b": SUPPRESSED, "c": "50"}
    assert table.complementary == frozenset()


def _feasible_values(released, groups, k, limit):
    """Every value each suppressed group can take in a table that gives exactly ``released``
    (an attacker who knows the total, the shown cells and the algorithm)."""
    hidden = [g for g in groups if released.cells[g].withheld]
    rest = released.total.value - sum(
        released.cells[g].value for g in groups if not released.cells[g].withheld
    )
    feasible: dict[str, set[int]] = {g: set() for g in hidden}
    for values in itertools.product(range(limit + 1), repeat=len(hidden)):
        if sum(values) != rest:
            continue
        candidate = {
            g: values[hidden.index(g)] if g in hidden else released.cells[g].value for g in groups
        }
        again = k_suppress(candidate, k=k)
        if (again.cells, again.total) == (released.cells, released.total):  # What is released.
            for g, v in zip(hidden, values, strict=True):
                feasible[g].add(v)
    return feasible


def test_a_suppressed_cell_cannot_be_recovered_from_the_shown_total():
    counts = {"low": 812, "medium": 3, "high": 40}
    released = k_suppress(counts, k=5)

    # Without complementary suppression: 855 - 812 - 40 gives medium's 3 back.
    assert released.total.value == 855
    assert 855 - counts["low"] - counts["high"] == counts["medium"]
    # With it, high is withheld too and an attacker who knows the total, the shown cell and the
    # algorithm finds ten tables that give this release: medium is anything in 0..4 or 39..43.
    assert _shown(released) == {"low": "812", "medium": SUPPRESSED, "high": SUPPRESSED}
    feasible = _feasible_values(released, list(counts), k=5, limit=43)
    assert feasible == {
        "medium": {0, 1, 2, 3, 4, 39, 40, 41, 42, 43},
        "high": {0, 1, 2, 3, 4, 39, 40, 41, 42, 43},
    }


@pytest.mark.parametrize(
    "counts",
    [
        {"a": 1, "b": 7, "c": 9, "d": 30},
        {"a": 4, "b": 4, "c": 6, "d": 8},
        {"a": 0, "b": 5, "c": 5, "d": 5},
        {"a": 2, "b": 1, "c": 6, "d": 20},
    ],
)
def test_no_suppressed_cell_is_pinned_down_by_the_release(counts):
    released = k_suppress(counts, k=5)
    assert released.below_k  # Each case has a small group.

    feasible = _feasible_values(released, list(counts), k=5, limit=sum(counts.values()))

    for group, values in feasible.items():
        assert counts[group] in values
        assert len(values) >= 2, (group, values)


def test_k_must_be_positive_and_counts_not_negative():
    with pytest.raises(ValueError, match="k must be at least 1"):
        k_suppress({"a": 1}, k=0)
    with pytest.raises(ValueError, match="must not be negative"):
        k_suppress({"a": -1}, k=5)


# The Laplace mechanism ------------------------------------------------------------------------


def test_the_noise_scale_is_sensitivity_over_epsilon_and_the_margin_follows():
    query = LaplaceQuery("buyers", sensitivity=3, epsilon=0.5)

    assert query.scale == 6.0
    assert query.margin(0.95) == pytest.approx(6.0 * math.log(20))
    assert query.as_dict() == {
        "measure": "buyers", "sensitivity": 3, "epsilon": 0.5, "scale": 6.0,
        "margin95": 17.97, "bound": "",
    }  # fmt: skip


def test_the_noise_drawn_is_laplace_with_that_scale():
    query = LaplaceQuery("buyers", sensitivity=3, epsilon=0.5)  # b = 6
    draws = laplace_noise(np.zeros(200_000), query=query, rng=noise_generator(20))

    # The maximum-likelihood scale of a centred Laplace sample is the mean absolute value; its
    # standard error here is 6 / sqrt(200,000) = 0.013, so 1% (0.06) is over four of them.
    assert np.mean(np.abs(draws)) == pytest.approx(6.0, rel=0.01)
    assert abs(np.median(draws)) < 0.05
    assert np.mean(np.abs(draws) > query.margin(0.95)) == pytest.approx(0.05, abs=0.002)
    assert stats.kstest(draws, stats.laplace(scale=6.0).cdf).pvalue > 0.01
    # ... and not with the scale of a mistaken calibration (epsilon / sensitivity, or 1/epsilon)
    assert stats.kstest(draws, stats.laplace(scale=2.0).cdf).pvalue < 1e-6
    assert stats.kstest(draws, stats.laplace(scale=1 / 6).cdf).pvalue < 1e-6


def test_noise_is_added_to_the_exact_values_one_draw_each():
    query = LaplaceQuery("customers", sensitivity=1, epsilon=1)
    exact = [10.0, 200.0, 3000.0]

    noisy = laplace_noise(exact, query=query, rng=noise_generator(3))

    expected = np.array(exact) + np.random.default_rng(3).laplace(0.0, 1.0, size=3)
    assert noisy.tolist() == expected.tolist()


def test_a_release_rounds_clamps_at_zero_and_withholds_noisy_counts_below_k():
    query = LaplaceQuery("customers", sensitivity=1, epsilon=1e6)  # b = 1e-6: no visible noise

    cells = laplace_release([0, 4, 5, 1234], query=query, rng=noise_generator(1), k=5)

    assert cells == [Cell(None, "< 5"), Cell(None, "< 5"), Cell(5, "5"), Cell(1234, "1,234")]
    money = laplace_release([12.346, 0.0], query=query, rng=noise_generator(1), decimals=2)
    assert money == [Cell(12.35, "12.35"), Cell(0.0, "0.00")]


def test_noisy_counts_never_go_below_zero():
    query = LaplaceQuery("customers", sensitivity=1, epsilon=0.01)  # b = 100

    cells = laplace_release([0] * 1000, query=query, rng=noise_generator(5))

    values = [c.value for c in cells if c.value is not None]
    assert len(values) == 1000
    assert min(values) == 0
    assert all(v == int(v) for v in values)


def test_sensitivity_and_epsilon_must_be_positive():
    with pytest.raises(ValueError, match="sensitivity must be positive"):
        LaplaceQuery("x", sensitivity=0, epsilon=1)
    with pytest.raises(ValueError, match="epsilon must be positive"):
        LaplaceQuery("x", sensitivity=1, epsilon=float("inf"))


def test_a_budget_split_over_queries_adds_back_up_to_it():
    share = epsilon_split(1.0, 7)
    assert share * 7 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no query"):
        epsilon_split(1.0, 0)


def test_without_a_seed_every_generator_draws_other_noise():
    # Production never passes a seed: the operating system's entropy seeds each release.
    first, second = noise_generator().laplace(size=8), noise_generator().laplace(size=8)

    assert first.tolist() != second.tolist()
