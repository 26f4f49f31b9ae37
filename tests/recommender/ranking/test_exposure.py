import pytest

from recommender.ranking.exposure import exposure_positions, place_exposure


@pytest.mark.parametrize(
    ("k", "slots", "expected"),
    [
        (10, 1, [9]),
        (10, 2, [8, 9]),
        (20, 1, [9, 19]),
        (25, 1, [9, 19]),  # The last run (5 positions) is a run of 10 cut short: no slot in it.
        (4, 1, [3]),  # Shorter than a run: a run of its own with its share, at least 1.
        (4, 3, [3]),  # 3 in 10 is 1.2 in 4.
        (8, 2, [6, 7]),
        (6, 5, [3, 4, 5]),  # 5 in 10 would be 3 in 6: at most half.
        (2, 1, [1]),
        (1, 1, []),
        (10, 0, []),
    ],
)
def test_exposure_positions_are_the_last_of_each_run(k, slots, expected):
    assert exposure_positions(k, slots) == expected


def test_the_best_pool_product_takes_the_slot_and_the_ranked_list_moves_down():
    listed = list(range(1, 12))  # 11 ranked products, none without behaviour.
    placed = place_exposure(listed, [False] * 11, [90, 91], k=10, slots=1)
    assert placed == [(p, False) for p in range(1, 10)] + [(90, True)]


def test_a_product_without_behaviour_ranked_on_its_own_fills_the_quota():
    listed = [1, 2, 80, 3, 4, 5, 6, 7, 8, 9, 10]
    cold = [p == 80 for p in listed]
    placed = place_exposure(listed, cold, [90], k=10, slots=1)
    assert placed == [(p, False) for p in listed[:10]]


def test_a_pool_product_listed_further_down_moves_up_once():
    listed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 90, 12]
    cold = [p == 90 for p in listed]
    placed = place_exposure(listed, cold, [90, 91], k=20, slots=1)
    keys = [key for key, _ in placed]
    assert keys == [1, 2, 3, 4, 5, 6, 7, 8, 9, 90, 10, 11, 12]
    assert placed[9] == (90, True)
    assert keys.count(90) == 1  # Listed 13 products: the list ends short of 20.


def test_two_slots_per_run_and_an_empty_pool_keep_the_ranked_order():
    listed = list(range(1, 21))
    placed = place_exposure(listed, [False] * 20, [90], k=20, slots=2)
    # Positions 9 and 10 need 1 and 2 products without behaviour: the pool has one.
    assert [key for key, _ in placed] == [*range(1, 9), 90, *range(9, 20)]
    assert place_exposure(listed, [False] * 20, [], k=10, slots=2) == [
        (p, False) for p in range(1, 11)
    ]


def test_cold_flags_must_match_the_list():
    with pytest.raises(ValueError, match="cold: expected 2 flags, got 1"):
        place_exposure([1, 2], [False], [], k=2, slots=1)
