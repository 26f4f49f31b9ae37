"""Summing neighbour entries by column: the dense accumulator and the sort give the same floats."""

import numpy as np
import pytest

from recommender.ml import neighbours as nb


@pytest.mark.parametrize("n_columns", [10, 10**9], ids=["dense", "sorted"])
def test_entries_are_summed_per_column_in_the_order_given(n_columns):
    # given: column 7 gets 1e16, 1 and -1e16 in that order (1e16 + 1 rounds back to 1e16), and
    # column 2 values that cancel: it is still reached
    cols = np.array([7, 2, 7, 4, 2, 7])
    values = np.array([1e16, 0.5, 1.0, 3.0, -0.5, -1e16])

    # when
    unique, sums = nb.sum_by_column(cols, values, n_columns=n_columns)

    # then
    assert unique.tolist() == [2, 4, 7]
    assert sums.tolist() == [0.0, 3.0, 0.0]


def test_the_two_ways_agree_bit_for_bit_and_no_entries_give_nothing():
    rng = np.random.default_rng(0)
    cols = rng.integers(0, 500, size=3_000)
    values = rng.normal(size=3_000) * 10.0 ** rng.integers(-8, 8, size=3_000)

    dense = nb.sum_by_column(cols, values, n_columns=500)
    ranked = nb.sum_by_column(cols, values, n_columns=500 * nb.DENSE_SUM_FACTOR * 3_000)

    assert np.array_equal(dense[0], ranked[0])
    assert np.array_equal(dense[1], ranked[1])
    empty = nb.sum_by_column(np.empty(0, np.int64), np.empty(0), n_columns=500)
    assert (len(empty[0]), len(empty[1])) == (0, 0)


def test_accumulate_sums_the_rows_weighted():
    lists = nb.Neighbours(
        indptr=np.array([0, 2, 3, 3], dtype=np.int64),
        indices=np.array([1, 2, 2], dtype=np.int32),
        data=np.array([0.5, 0.25, 1.0], dtype=np.float32),
    )

    cols, sums = lists.accumulate(np.array([0, 1]), np.array([2.0, 3.0]))

    assert cols.tolist() == [1, 2]
    assert sums.tolist() == [1.0, 3.5]
