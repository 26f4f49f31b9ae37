"""The sequential model (issue 16): it learns an order, scores products it never saw from
their vectors, trains reproducibly, is saved and mapped read-only, and refuses a tiny shop."""

from __future__ import annotations

import os
import stat
from typing import Any

import numpy as np
import pytest

from recommender.evaluation.splits import leave_last_out
from recommender.ml.interactions import interactions_from_records
from recommender.ml.sequential import (
    NotEnoughData,
    SequentialConfig,
    SequentialModel,
    fit_sequential,
)
from recommender.ml.sequential.sequences import gap_buckets, holdout_last, sequences_from

DAY = 86_400.0
N_PRODUCTS = 30
A, B = 1, 2  # Product keys: B always follows A.
TINY = SequentialConfig(
    dim=16,
    layers=1,
    heads=1,
    max_len=8,
    dropout=0.0,
    max_epochs=12,
    patience=12,
    batch_size=32,
    learning_rate=5e-3,
)


def _vectors(n: int, dim: int = 12, seed: int = 7) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _ordered_shop(customers: int = 150, seed: int = 0):
    """Every customer buys 6 other products in random order, A somewhere, and B right after."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    others = np.arange(3, N_PRODUCTS + 1)
    for u in range(customers):
        seq = list(rng.choice(others, size=6, replace=False))
        at = int(rng.integers(0, 6))
        seq[at:at] = [A, B]
        for step, product in enumerate(seq):
            users.append(u)
            items.append(int(product))
            stamps.append(float(u * 100 * DAY + step * DAY))
    return interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(users),
        timestamps=stamps,
        catalogue_ids=np.arange(1, N_PRODUCTS + 1),
    )


@pytest.fixture(scope="module")
def ordered_model() -> SequentialModel:
    inter = _ordered_shop()
    model, _ = fit_sequential(
        inter, vectors=_vectors(N_PRODUCTS), config=TINY, device="cpu", threads=1
    )
    return model


def test_model_learns_that_b_follows_a(ordered_model: SequentialModel) -> None:
    # given a history that ends with A (and three other products)
    history = [5, 9, 14, A]
    # when every other product is scored
    query = ordered_model.query(
        product_ids=history, event_types=["purchase"] * 4, timestamps=[0.0, DAY, 2 * DAY, 3 * DAY]
    )
    assert query is not None
    scores = ordered_model.score_catalogue(query)
    scores[ordered_model.rows_of(history)] = -np.inf
    # then B ranks first
    assert int(ordered_model.item_ids[int(np.argmax(scores))]) == B


def test_product_added_after_the_fit_is_scored_from_its_vector(
    ordered_model: SequentialModel,
) -> None:
    # given a product the fit never saw, with the same vector as B
    vectors = _vectors(N_PRODUCTS)
    new_vector = vectors[B - 1]
    query = ordered_model.query(
        product_ids=[5, 9, A], event_types=["purchase"] * 3, timestamps=[0.0, DAY, 2 * DAY]
    )
    assert query is not None
    # when it is scored from its vector
    (new_logit,) = ordered_model.logits_of_vectors(query, new_vector[None])
    # then it gets exactly B's language-model part: B's logit without B's own embedding
    row_b = int(ordered_model.rows_of([B])[0])
    projected_b = ordered_model.project(vectors[B - 1][None])[0]
    assert new_logit == pytest.approx(float(projected_b @ query.q), rel=1e-5)
    assert np.isfinite(new_logit)
    # and the search vector finds it: the language-model part is the cosine with u times |u|
    unit = query.search_vector()
    assert unit is not None
    assert float(unit @ new_vector) * query.norm + query.offset == pytest.approx(
        new_logit, rel=1e-5
    )
    assert row_b >= 0


def test_a_history_of_products_newer_than_the_fit_still_gives_a_query(
    ordered_model: SequentialModel,
) -> None:
    vector = _vectors(N_PRODUCTS)[A - 1]
    query = ordered_model.query(
        product_ids=[999], event_types=["purchase"], timestamps=[0.0], extra_vectors={999: vector}
    )
    assert query is not None
    assert query.steps == 1
    assert ordered_model.query(product_ids=[998], event_types=["view"], timestamps=[0.0]) is None


def test_numpy_forward_matches_torch(ordered_model: SequentialModel) -> None:
    import torch

    from recommender.ml.sequential.network import SequentialNet, import_weights

    inter = _ordered_shop()
    net = SequentialNet(
        vectors=_vectors(N_PRODUCTS),
        n_types=len(inter.event_types) + 1,
        n_gaps=len(ordered_model.weights["gap_emb"]),
        config=TINY,
    )
    import_weights(net, ordered_model.weights)
    net.eval()
    history = [5, 9, 14, A]
    rows = ordered_model.rows_of(history)
    with torch.no_grad():
        matrix = net.item_matrix()
        gaps = gap_buckets(np.array([0.0, DAY, 2 * DAY, 3 * DAY]))
        purchase = inter.event_types.index("purchase")
        hidden = net.encode(
            torch.from_numpy(rows[None]),
            torch.full((1, 4), purchase),
            torch.from_numpy(gaps[None]),
            matrix,
        )[0, -1].numpy()
    query = ordered_model.query(
        product_ids=history, event_types=["purchase"] * 4, timestamps=[0.0, DAY, 2 * DAY, 3 * DAY]
    )
    assert query is not None
    np.testing.assert_allclose(query.q, hidden, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(ordered_model.items), matrix[:N_PRODUCTS].numpy(), rtol=1e-5, atol=1e-6
    )


def test_seeded_training_gives_identical_weights_twice() -> None:
    inter = _ordered_shop(customers=60)
    config = SequentialConfig(dim=16, layers=1, heads=2, max_len=8, max_epochs=2, patience=2)
    first, _ = fit_sequential(inter, vectors=_vectors(N_PRODUCTS), config=config, device="cpu")
    second, _ = fit_sequential(inter, vectors=_vectors(N_PRODUCTS), config=config, device="cpu")
    assert sorted(first.weights) == sorted(second.weights)
    for name in first.weights:
        np.testing.assert_array_equal(first.weights[name], second.weights[name], err_msg=name)
    np.testing.assert_array_equal(first.items, second.items)


def test_saved_model_is_mapped_read_only_and_scores_the_same(
    ordered_model: SequentialModel, tmp_path
) -> None:
    path = ordered_model.save(tmp_path / "model.sequential")
    loaded = SequentialModel.load(path)
    assert not loaded.items.flags.writeable
    assert all(not w.flags.writeable for w in loaded.weights.values())
    with pytest.raises(ValueError, match="read-only"):
        loaded.items[0, 0] = 1.0
    args: dict[str, Any] = {
        "product_ids": [5, A], "event_types": ["purchase", "view"], "timestamps": [0.0, DAY]
    }  # fmt: skip
    before, after = ordered_model.query(**args), loaded.query(**args)
    assert before is not None
    assert after is not None
    np.testing.assert_array_equal(before.q, after.q)
    assert not stat.S_IMODE(os.stat(path).st_mode) & stat.S_IXUSR


def test_a_tiny_shop_gets_no_model_and_a_clear_message() -> None:
    inter = _ordered_shop(customers=5)
    with pytest.raises(
        NotEnoughData,
        match=r"too little behaviour to learn an order from: 5 "
        r"customers with two or more products \(at least 20 needed\)",
    ):
        fit_sequential(inter, vectors=_vectors(N_PRODUCTS), config=TINY, device="cpu")


def test_validation_holds_out_what_leave_last_out_holds_out() -> None:
    inter = _ordered_shop(customers=40, seed=3)
    split = leave_last_out(inter, min_items=3)
    holdout = holdout_last(sequences_from(inter), min_items=3)
    assert [(h.user, h.item) for h in split.held_out] == list(
        zip(holdout.users.tolist(), holdout.items.tolist(), strict=True)
    )


def _basket_shop(*, reverse_rows: bool, customers: int = 200, basket: int = 4, seed: int = 5):
    """Every customer buys two baskets of ``basket`` distinct products; the lines of a basket
    share its timestamp and are written in product order (reversed with ``reverse_rows``), as
    an export might list an invoice's lines."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for u in range(customers):
        chosen = rng.choice(np.arange(1, N_PRODUCTS + 1), size=2 * basket, replace=False)
        for b in range(2):
            lines = sorted(chosen[b * basket : (b + 1) * basket].tolist(), reverse=reverse_rows)
            for product in lines:
                users.append(u)
                items.append(int(product))
                stamps.append(float(u * 100 * DAY + b * DAY))
    inter = interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=["purchase"] * len(users),
        timestamps=stamps,
        catalogue_ids=np.arange(1, N_PRODUCTS + 1),
    )
    return inter, np.array(users), np.array(items)


def test_row_order_within_a_basket_decides_nothing() -> None:
    # given the same baskets written with their lines in opposite orders
    forward, users, items = _basket_shop(reverse_rows=False)
    backward, _, _ = _basket_shop(reverse_rows=True)
    # when the split holds out each customer's last product, and the sequences are built
    held_forward = [(h.user, h.item) for h in leave_last_out(forward).held_out]
    held_backward = [(h.user, h.item) for h in leave_last_out(backward).held_out]
    seq_forward, seq_backward = sequences_from(forward), sequences_from(backward)
    # then both give the same held-out products and the same sequences
    assert held_forward == held_backward
    np.testing.assert_array_equal(seq_forward.items, seq_backward.items)
    np.testing.assert_array_equal(seq_forward.offsets, seq_backward.offsets)
    # and the held-out product is not "the last line": a seeded draw from the last basket
    last_line = {int(u): int(items[np.flatnonzero(users == u)[-1]]) for u in np.unique(users)}
    share = np.mean([item_idx_is(forward, item, last_line[user]) for user, item in held_forward])
    assert len(held_forward) == 200
    assert 0.15 < share < 0.35  # About 1 in 4 (a basket of 4), not 1.


def item_idx_is(inter, item_idx: int, product_id: int) -> bool:
    return int(inter.item_ids[item_idx]) == product_id


def test_a_time_budget_stops_training_and_keeps_the_best_epoch() -> None:
    inter = _ordered_shop(customers=150)
    config = SequentialConfig(
        dim=16, layers=1, heads=1, max_len=8, max_epochs=50, patience=50, batch_size=8,
        max_seconds=0.5,
    )  # fmt: skip
    model, report = fit_sequential(
        inter, vectors=_vectors(N_PRODUCTS), config=config, device="cpu", threads=1
    )
    assert report.stopped.startswith("time budget 0.5 s")
    assert 1 <= len(report.epochs) < 50
    assert report.best_epoch in [e["epoch"] for e in report.epochs]
    assert round(report.best_ndcg, 5) == max(e["ndcg@10"] for e in report.epochs)
    assert model.meta["fit"]["stopped"] == report.stopped


def test_the_time_budget_must_be_a_number_of_seconds() -> None:
    with pytest.raises(ValueError, match=r"max_seconds: expected a number >= 0, got -1"):
        SequentialConfig(max_seconds=-1)


def test_windows_cut_each_sequence_from_the_end_in_narrow_types() -> None:
    from recommender.ml.sequential.sequences import Sequences, windows

    # given two customers: one with 6 products, one with 1 (nothing to learn from)
    seqs = Sequences(
        items=np.array([10, 11, 12, 13, 14, 15, 20], dtype=np.int64),
        types=np.array([0, 1, 0, 1, 0, 1, 0], dtype=np.int64),
        gaps=np.array([0, 1, 2, 3, 4, 5, 0], dtype=np.int64),
        times=np.zeros(7),
        offsets=np.array([0, 6, 7], dtype=np.int64),
    )
    # when windows of 3 steps are cut (padding product 99)
    items, types, gaps, targets = windows(seqs, max_len=3, pad=99)
    # then the newest window comes first, the older one is left-padded, the short customer has
    # none
    np.testing.assert_array_equal(items, [[12, 13, 14], [99, 10, 11]])
    np.testing.assert_array_equal(targets, [[13, 14, 15], [99, 11, 12]])
    np.testing.assert_array_equal(types, [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(gaps, [[2, 3, 4], [0, 0, 1]])
    assert (items.dtype, targets.dtype, types.dtype, gaps.dtype) == (
        np.int32, np.int32, np.int8, np.int8,
    )  # fmt: skip


def test_item_rows_are_the_rows_of_the_item_matrix() -> None:
    import torch

    from recommender.ml.sequential.network import SequentialNet

    net = SequentialNet(vectors=_vectors(N_PRODUCTS), n_types=2, n_gaps=18, config=TINY)
    assert net.ids is not None
    with torch.no_grad():
        net.ids.weight.normal_()
        rows = torch.tensor([N_PRODUCTS, 3, 0, 3, N_PRODUCTS - 1])  # The padding row first.
        np.testing.assert_allclose(
            net.item_rows(rows).numpy(), net.item_matrix()[rows].numpy(), rtol=1e-6, atol=1e-6
        )


def test_sampled_softmax_learns_the_order_from_the_batch_s_own_products() -> None:
    # given a catalogue above the full-softmax limit: each batch embeds only its own products
    inter = _ordered_shop()
    config = SequentialConfig(**{**TINY.to_dict(), "full_softmax_max_items": 10, "negatives": 8})
    # when the model is trained twice
    model, report = fit_sequential(
        inter, vectors=_vectors(N_PRODUCTS), config=config, device="cpu", threads=1
    )
    again, _ = fit_sequential(
        inter, vectors=_vectors(N_PRODUCTS), config=config, device="cpu", threads=1
    )
    # then B ranks first after A, and the weights are the same both times
    query = model.query(
        product_ids=[5, 9, 14, A], event_types=["purchase"] * 4,
        timestamps=[0.0, DAY, 2 * DAY, 3 * DAY],
    )  # fmt: skip
    assert query is not None
    scores = model.score_catalogue(query)
    scores[model.rows_of([5, 9, 14, A])] = -np.inf
    assert int(model.item_ids[int(np.argmax(scores))]) == B
    assert report.stopped == "max_epochs 12"
    for name in model.weights:
        np.testing.assert_array_equal(model.weights[name], again.weights[name], err_msg=name)
