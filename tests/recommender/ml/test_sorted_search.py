"""Many keys searched in a sorted array: the same positions as numpy's searchsorted, whatever
the keys' order and number."""

import numpy as np
import pytest

from recommender.ml.sorted_search import (
    DENSE_IDS_FACTOR,
    SORT_KEYS_FROM,
    IdRows,
    in_sorted,
    rows_in_sorted,
    search_sorted,
    sorted_ids,
)


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


@pytest.mark.parametrize("n_keys", [1, 37, SORT_KEYS_FROM + 1, 5_000])
@pytest.mark.parametrize("n_values", [1, 12, 3_000])
def test_membership_equals_numpy_s_isin(n_keys, n_values):
    rng = np.random.default_rng(n_keys * 7 + n_values)
    array = np.unique(rng.integers(0, 10_000, size=n_values))
    # Half the keys drawn from the array, half anywhere (below and above its range too).
    keys = np.concatenate(
        [rng.choice(array, size=n_keys // 2), rng.integers(-5, 10_005, size=n_keys - n_keys // 2)]
    )
    rng.shuffle(keys)
    found = in_sorted(array, keys)
    assert found.dtype == bool
    assert found.tolist() == np.isin(keys, array).tolist()
    assert 0 < found.sum() < n_keys or n_keys == 1


def test_membership_of_no_keys_or_in_an_empty_array_is_false():
    assert in_sorted(np.array([1, 5], dtype=np.int64), []).tolist() == []
    assert in_sorted(np.empty(0, dtype=np.int64), [1, 5]).tolist() == [False, False]


def test_a_set_of_ids_becomes_an_ascending_int64_array():
    ids = sorted_ids({41, 3, 20, 8})
    assert ids.dtype == np.int64
    assert ids.tolist() == [3, 8, 20, 41]
    assert sorted_ids(set()).tolist() == []


@pytest.mark.parametrize(
    "ids",
    [
        [3, 8, 20, 41],  # dense enough: a table by id
        [0, 1, 2, 3, 4],  # id 0 and the last id
        [5, 10**9, 10**12],  # too sparse for a table: searched
        [-7, 2, 9],  # a negative id: searched
    ],
)
def test_id_rows_equal_the_search_s_for_any_key(ids):
    array = np.array(ids, dtype=np.int64)
    lookup = IdRows(array)
    dense = array[0] >= 0 and array[-1] < DENSE_IDS_FACTOR * len(array) + 1024
    assert (lookup._table is not None) == dense
    keys = np.array(
        [*ids, -1, -(10**13), 0, 1, 42, 40, int(array[-1]) + 1, int(array[-1]) + 2, 10**13] * 60
    )  # Above the sort threshold, repeats, keys below, between and above the ids.
    rows = lookup(keys)
    assert rows.dtype == np.int64
    assert rows.tolist() == rows_in_sorted(array, keys).tolist()
    assert lookup(list(reversed(ids))).tolist() == list(reversed(range(len(ids))))
    assert lookup([]).tolist() == []


def test_id_rows_of_no_ids_find_nothing():
    assert IdRows(np.empty(0, dtype=np.int64))([1, 2]).tolist() == [-1, -1]
