import numpy as np

from recommender.evaluation.splits import HeldOut, cold_start_split, leave_last_out
from recommender.ml.interactions import interactions_from_records


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
    # Customer 1's last new product is 103 (event order breaks the tie with 102); the repeat of
    # 100 at t=4 comes after it and leaves training too. Customer 2 has only 2 products.
    assert split.held_out == [HeldOut(user=0, item=3, time=3.0)]
    assert split.train.tolist() == [True, True, True, False, False, True, True]


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
