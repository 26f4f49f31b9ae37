"""Interaction arrays: basket keys."""

import numpy as np

from recommender.ml.interactions import Interactions


def _interactions(users: list[int], times: list[float]) -> Interactions:
    n = len(users)
    return Interactions(
        user_idx=np.array(users, dtype=np.int32),
        item_idx=np.zeros(n, dtype=np.int32),
        event_code=np.zeros(n, dtype=np.int8),
        timestamp=np.array(times, dtype=np.float64),
        quantity=np.ones(n, dtype=np.float32),
        user_ids=np.arange(3, dtype=np.int64),
        item_ids=np.arange(1, dtype=np.int64),
    )


def test_events_of_one_customer_at_one_moment_share_a_basket_numbered_in_customer_time_order():
    inter = _interactions([2, 0, 2, 0, 1, 0], [5.0, 9.0, 5.0, 3.0, 9.0, 9.0])

    # (0, 3) -> 0, (0, 9) -> 1, (1, 9) -> 2, (2, 5) -> 3
    assert inter.baskets().tolist() == [3, 1, 3, 0, 2, 1]


def test_given_baskets_are_kept_and_no_events_give_no_baskets():
    given = _interactions([0, 1], [1.0, 1.0])
    given = Interactions(**{**given.__dict__, "basket": np.array([7, 7], dtype=np.int64)})

    assert given.baskets().tolist() == [7, 7]
    assert _interactions([], []).baskets().tolist() == []
