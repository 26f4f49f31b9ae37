"""Many keys searched in a sorted array: the same positions as numpy's searchsorted, whatever
the keys' order and number."""

import numpy as np
import pytest

from recommender.ml.sorted_search import SORT_KEYS_FROM, rows_in_sorted, search_sorted


@pytest.mark.parametrize("n_keys", [0, 1, SORT_KEYS_FROM - 1, SORT_KEYS_FROM, 5_000])
@pytest.mark.parametrize("order", ["random", "ascending", "descending"])
def test_positions_equal_numpy_s_for_keys_in_any_order(n_keys, order):
    rng = np.random.default_rng(n_keys)
    array = np.unique(rng.integers(0, 100_000, size=20_000))
    # Keys below, inside and above the array's range, with repeats.
    keys = rng.integers(-10, 100_010, size=n_keys)
    if order != "random":
        keys = np.sort(keys)[:: 1 if order == "ascending" else -1]
    found = search_sorted(array, keys)
    assert found.tolist() == np.searchsorted(array, keys).tolist()


def test_rows_are_positions_of_held_keys_and_minus_one_for_the_others():
    array = np.array([3, 8, 20, 41], dtype=np.int64)
    keys = np.array([41, 2, 8, 8, 100, 3, 21] * 50, dtype=np.int64)  # Above the sort threshold.
    assert rows_in_sorted(array, keys).tolist() == [3, -1, 1, 1, -1, 0, -1] * 50
    assert rows_in_sorted(array, []).tolist() == []
    assert rows_in_sorted(np.empty(0, dtype=np.int64), [1, 2]).tolist() == [-1, -1]
