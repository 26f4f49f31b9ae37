import numpy as np

from recommender.evaluation.splits import HeldOut, cold_start_split, leave_last_out
from recommender.ml.interactions import interactions_from_records, tie_keys


def _interactions():
    # Customer 1: a, b, then c and d in one basket, then a again; customer 2 has 2 products.
    return interactions_from_records(
        user_ids=[1, 1, 1, 1, 1, 2, 2],
        item_ids=[100, 101, 102, 103, 100, 100, 101],
        event_types=["purchase"] * 7,
        timestamps=[1.0, 2.0, 3.0, 3.0, 4.0, 1.0, 2.0],
        catalogue_ids=[100, 101, 102, 103],
    )


def test_leave_last_out_holds_out_the_last_new_product_and_what_follows():
    split = leave_last_out(_interactions(), min_items=3)
    # Customer 1's last new product is 103 (its seeded tie key is above 102's: the test below);
    # the repeat of
    # 100 at t=4 comes after it and leaves training too. Customer 2 has only 2 products.
    assert split.held_out == [HeldOut(user=0, item=3, time=3.0)]
    assert split.train.tolist() == [True, True, True, False, False, True, True]


def _one_basket(rows):
    # Customers 1 and 2: product 100, then 102-105 in one basket (one time), rows as given.
    users = [1, 2] + [u for u, _ in rows]
    items = [100, 100] + [i for _, i in rows]
    return interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(users),
        timestamps=[1.0, 1.0] + [3.0] * len(rows),
        catalogue_ids=[100, 102, 103, 104, 105],
    )


def test_equal_times_are_ordered_by_the_seeded_tie_key_not_by_row_order():
    basket = [(u, i) for u in (1, 2) for i in (102, 103, 104, 105)]
    forward, backward = _one_basket(basket), _one_basket(basket[::-1])
    # The tie keys (splitmix64 of customer, product and seed 0) order customer 1's basket
    # 102 < 103 < 104 < 105 and customer 2's 104 < 105 < 102 < 103, whatever the rows' order.
    keys = tie_keys(forward)[2:]
    assert np.argsort(keys[:4]).tolist() == [0, 1, 2, 3]
    assert np.argsort(keys[4:]).tolist() == [2, 3, 0, 1]
    assert tie_keys(backward)[2:].tolist() == keys[::-1].tolist()
    assert tie_keys(forward, seed=1).tolist() != tie_keys(forward).tolist()
    for inter in (forward, backward):
        # Customer 2's held-out product is neither its first nor its last row in either order.
        test = leave_last_out(inter, min_items=3)
        assert test.held_out == [HeldOut(user=0, item=4, time=3.0), HeldOut(1, 2, 3.0)]
        validation = leave_last_out(inter, min_items=3, steps=2)
        assert validation.held_out == [HeldOut(user=0, item=3, time=3.0), HeldOut(1, 1, 3.0)]
    # Only the held-out product and the later ones leave training: the basket's other lines stay.
    test = leave_last_out(forward, min_items=3)
    assert forward.item_ids[forward.item_idx[~test.train]].tolist() == [105, 103]


def test_validation_split_is_the_second_to_last_product():
    split = leave_last_out(_interactions(), min_items=3, steps=2)
    assert split.held_out == [HeldOut(user=0, item=2, time=3.0)]
    assert split.train.tolist() == [True, True, False, False, False, True, True]


def test_cold_start_split_removes_the_drawn_products_entirely():
    inter = _interactions()
    train, held, cold = cold_start_split(inter, share=0.25, seed=0)
    assert len(cold) == 1
    assert train.tolist() == (~np.isin(inter.item_idx, cold)).tolist()
    assert all(h.item == cold[0] for h in held)
