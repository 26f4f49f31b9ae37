"""Evaluation splits: leave-last-out (test and validation) and cold start, as described in
``protocols``; each gives the training mask over the events and the held-out products.

Events with equal timestamps (the lines of one invoice) are ordered by
:func:`recommender.ml.interactions.tie_keys`, a seeded hash of customer and product, never by
row order: which product of the last basket is held out is then a seeded draw, the same for every
model, not "the last line of the file", which a model of order could learn from the export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from recommender.ml.interactions import Interactions, tie_keys


@dataclass(frozen=True)
class HeldOut:
    user: int  # Index into interactions.user_ids.
    item: int  # Index into interactions.item_ids.
    time: float


@dataclass
class Split:
    train: np.ndarray  # Boolean mask over the events.
    held_out: list[HeldOut]


def _user_groups(inter: Interactions, mask: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
    """(user, event indices in time order, equal times in :func:`tie_keys` order) for the
    events in ``mask``. (Equal keys, the same product twice at one time, keep event order.)"""
    idx = np.flatnonzero(mask)
    ties = tie_keys(inter, idx)
    order = idx[np.lexsort((idx, ties, inter.timestamp[idx], inter.user_idx[idx]))]
    users = inter.user_idx[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            yield int(inter.user_idx[chunk[0]]), chunk


def leave_last_out(
    inter: Interactions, *, min_items: int = 3, steps: int = 1, base: np.ndarray | None = None
) -> Split:
    """Hold out each eligible customer's last product; ``steps=2`` gives the validation split."""
    mask = np.ones(len(inter), dtype=bool) if base is None else base.copy()
    # Every customer's events, grouped once (a sort of all events): eligibility reads them, and
    # so does the first step when no base mask narrows it.
    everyone = list(_user_groups(inter, np.ones(len(inter), dtype=bool)))
    eligible = {
        user for user, events in everyone if len(np.unique(inter.item_idx[events])) >= min_items
    }
    held: list[HeldOut] = []
    for step in range(steps):
        held = []
        drop: list[np.ndarray] = []
        groups = everyone if step == 0 and base is None else _user_groups(inter, mask)
        for user, events in groups:
            if user not in eligible:
                continue
            items = inter.item_idx[events]
            distinct, first = np.unique(items, return_index=True)
            if len(distinct) < 2:
                continue  # Nothing would be left as history.
            last = int(np.argmax(first))
            item = int(distinct[last])
            at = float(inter.timestamp[events[first[last]]])
            gone = (items == item) | (inter.timestamp[events] > at)
            drop.append(events[gone])
            held.append(HeldOut(user=user, item=item, time=at))
        if drop:
            mask[np.concatenate(drop)] = False
    return Split(train=mask, held_out=held)


def validation_sample(
    inter: Interactions,
    *,
    base: np.ndarray | None,
    min_items: int,
    max_users: int,
    seed: int,
) -> tuple[Split, list[HeldOut]]:
    """The validation split (each customer's last product, or the last one inside the training
    mask ``base``) and at most ``max_users`` of its held-out customers in a seeded random order:
    what the fit's searches learn on (``blend_search``, ``reranker_training``)."""
    split = leave_last_out(inter, min_items=min_items, steps=1, base=base)
    order = np.random.default_rng(seed).permutation(len(split.held_out))[:max_users]
    return split, [split.held_out[i] for i in order]


def held_out_sample(held: list[HeldOut], *, size: int, seed: int) -> list[HeldOut]:
    """At most ``size`` of ``held``, drawn with ``numpy.random.default_rng(seed)`` and kept in
    their order (all of them when there are fewer)."""
    if len(held) <= size:
        return held
    chosen = np.sort(np.random.default_rng(seed).choice(len(held), size=size, replace=False))
    return [held[i] for i in chosen]


def cold_start_split(
    inter: Interactions, *, share: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, list[HeldOut], np.ndarray]:
    """(train mask, held-out first cold product per customer, cold item indices)."""
    rng = np.random.default_rng(seed)
    with_events = np.unique(inter.item_idx)
    n_cold = max(1, round(share * len(with_events)))
    cold = np.sort(rng.choice(with_events, size=n_cold, replace=False))
    is_cold = np.isin(inter.item_idx, cold)
    held: list[HeldOut] = []
    for user, events in _user_groups(inter, np.ones(len(inter), dtype=bool)):
        cold_events = events[is_cold[events]]
        if not len(cold_events):
            continue
        first = cold_events[0]
        at = float(inter.timestamp[first])
        warm_before = events[(~is_cold[events]) & (inter.timestamp[events] <= at)]
        if len(warm_before):
            held.append(HeldOut(user=user, item=int(inter.item_idx[first]), time=at))
    return ~is_cold, held, cold
