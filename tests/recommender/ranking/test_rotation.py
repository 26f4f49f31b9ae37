"""Rotation's arithmetic and its configuration (framework-free)."""

import pytest

from recommender.ml.engine import ConfigError, EngineConfig
from recommender.ranking.rotation import Demote, Rotation, rotation_factors
from recommender.ranking.types import RankedItem

HOUR = 3600.0
NOW = 1_000_000.0
HALF = Rotation(rate=0.5, hours=24.0, min_impressions=3)


def shown(*hours_ago_and_products):
    return [(NOW - h * HOUR, products) for h, products in hours_ago_and_products]


def test_a_product_shown_min_impressions_times_is_demoted_by_the_rate_and_more_each_time():
    lists = shown((1, ["A", "B"]), (2, ["A", "B", "C"]), (3, ["A", "C"]), (4, ["A"]), (5, ["B"]))

    # A: 4 lists, B: 3, C: 2 (below the threshold: untouched).
    assert rotation_factors(lists, HALF, now=NOW) == {"A": 0.25, "B": 0.5}


def test_an_interaction_after_some_lists_resets_the_count_to_the_lists_after_it():
    lists = shown((1, ["A"]), (2, ["A"]), (3, ["A"]), (4, ["A"]), (5, ["B"]), (6, ["B"]),
                  (7, ["B"]))  # fmt: skip

    factors = rotation_factors(
        lists, HALF, now=NOW, touched={"A": NOW - 2.5 * HOUR, "B": NOW - 10 * HOUR}
    )

    # A was touched after its third-newest list: 2 lists since, below 3. B's touch is older
    # than every list: 3 lists count.
    assert factors == {"B": 0.5}


def test_lists_outside_the_window_do_not_count():
    lists = shown((1, ["A"]), (23, ["A"]), (25, ["A"]), (30, ["A"]))

    assert rotation_factors(lists, HALF, now=NOW) == {}
    assert rotation_factors(lists, Rotation(0.5, 26.0, 3), now=NOW) == {"A": 0.5}


def test_a_product_listed_twice_in_one_list_counts_once_and_rate_one_sinks_it_to_zero():
    lists = shown((1, ["A", "A", "A"]), (2, ["A"]))

    assert rotation_factors(lists, HALF, now=NOW) == {}
    assert rotation_factors(lists, Rotation(1.0, 24.0, 2), now=NOW) == {"A": 0.0}


def test_demote_multiplies_the_scores_of_its_products_only():
    items = [
        RankedItem(index=i, product_id=pid, score=score, sources=("semantic",),
                   components={"semantic": score}, reasons=())
        for i, (pid, score) in enumerate([(10, 0.9), (11, 0.8), (12, 0.4)])
    ]  # fmt: skip

    demoted = Demote({10: 0.25, 99: 0.5})(items)

    assert [(item.product_id, item.score) for item in demoted] == [(10, 0.225), (11, 0.8),
                                                                    (12, 0.4)]  # fmt: skip
    assert items[0].score == 0.9  # The list it was given is not changed.
    assert not Demote({})


def test_rotation_is_off_by_default_and_a_list_fills_in_defaults():
    assert EngineConfig().rotation == {}
    config = EngineConfig.from_dict({"rotation": {"similar": {"rate": 0.2}, "customer": {}}})

    assert config.rotation == {
        "customer": {"rate": 0.5, "hours": 24.0, "min_impressions": 3},
        "similar": {"rate": 0.2, "hours": 24.0, "min_impressions": 3},
    }
    assert EngineConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("rotation", "message"),
    [
        ({"win_back": {}}, "rotation: unknown list 'win_back'; expected one of ['customer', "
                           "'session', 'similar', 'bought_together', 'trending']"),
        ({"customer": 0.5}, "rotation.customer: expected an object, got 0.5"),
        ({"customer": {"rate": 0}}, "rotation.customer.rate: expected a number above 0 and at "
                                    "most 1, got 0"),
        ({"customer": {"rate": 1.5}}, "rotation.customer.rate: expected a number above 0 and at "
                                      "most 1, got 1.5"),
        ({"customer": {"hours": 721}}, "rotation.customer.hours: expected a number above 0 and "
                                       "at most 720, got 721"),
        ({"customer": {"min_impressions": 2.5}}, "rotation.customer.min_impressions: expected an "
                                                 "integer from 1 to 20, got 2.5"),
        ({"customer": {"min_impressions": 21}}, "rotation.customer.min_impressions: expected an "
                                                "integer from 1 to 20, got 21"),
        ({"customer": {"time": 2}}, "rotation.customer.time: unknown setting; expected ['rate', "
                                    "'hours', 'min_impressions']"),
        (["customer"], "rotation: expected an object of lists, got ['customer']"),
    ],
)  # fmt: skip
def test_a_bad_rotation_is_refused_naming_the_field(rotation, message):
    with pytest.raises(ConfigError) as caught:
        EngineConfig.from_dict({"rotation": rotation})

    assert str(caught.value) == message
