"""Behaviour events as numpy arrays, and the user x item matrices built from them. Framework-free.

:class:`Interactions` is the one training input of the collaborative models: parallel arrays, one
entry per event, with dense indices into ``user_ids`` and ``item_ids``. The services layer builds
it from ``Event`` rows; tests and the evaluation build it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

# Codes of the event types in ``Interactions.event_code``; unknown types get codes from 5 upward.
EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "search")
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class Interactions:
    """Events as parallel arrays (one entry per event).

    ``user_idx``/``item_idx`` index ``user_ids``/``item_ids``; ``event_code`` indexes
    ``event_types``; ``timestamp`` is in seconds (any epoch, UTC); ``quantity`` is the event's
    count (1 for views). ``basket`` groups events that happened together (a session or an
    invoice); -1 means "no basket", and then the user and the exact timestamp stand in for it.
    """

    user_idx: np.ndarray  # int32
    item_idx: np.ndarray  # int32
    event_code: np.ndarray  # int8
    timestamp: np.ndarray  # float64 seconds
    quantity: np.ndarray  # float32
    user_ids: np.ndarray  # int64 customer keys
    item_ids: np.ndarray  # int64 product keys
    event_types: tuple[str, ...] = EVENT_TYPES
    basket: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.user_idx)
        for name in ("item_idx", "event_code", "timestamp", "quantity"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries, got {len(getattr(self, name))}")
        if len(self.basket) not in (0, n):
            raise ValueError(f"basket: expected 0 or {n} entries, got {len(self.basket)}")
        if n and (self.user_idx.min() < 0 or self.user_idx.max() >= len(self.user_ids)):
            raise ValueError("user_idx: index outside user_ids")
        if n and (self.item_idx.min() < 0 or self.item_idx.max() >= len(self.item_ids)):
            raise ValueError("item_idx: index outside item_ids")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user_idx)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The events where ``mask`` is true, with the same id maps."""
        return Interactions(
            user_idx=self.user_idx[mask],
            item_idx=self.item_idx[mask],
            event_code=self.event_code[mask],
            timestamp=self.timestamp[mask],
            quantity=self.quantity[mask],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            event_types=self.event_types,
            basket=self.basket[mask] if len(self.basket) else self.basket,
        )

    def baskets(self) -> np.ndarray:
        """A basket key per event: the given basket, else (user, timestamp) pairs numbered."""
        if len(self.basket):
            return self.basket
        # Numbered in (user, timestamp) order, as a sort of the pairs would; one stable sort and
        # a running count, without the pairs' copy that ``np.unique(axis=0)`` sorts.
        order = np.lexsort((self.timestamp, self.user_idx))
        starts = np.empty(len(order), dtype=bool)
        starts[:1] = True
        if len(order) > 1:
            user, time = self.user_idx[order], self.timestamp[order]
            np.not_equal(user[1:], user[:-1], out=starts[1:])
            starts[1:] |= time[1:] != time[:-1]
            del user, time
        keys = np.empty(len(order), dtype=np.int64)
        keys[order] = np.cumsum(starts) - 1
        return keys


def interactions_from_records(
    *,
    user_ids: Sequence[int],
    item_ids: Sequence[int],
    event_types: Sequence[str],
    timestamps: Sequence[float],
    quantities: Sequence[float] | None = None,
    baskets: Sequence[int] | None = None,
    catalogue_ids: Sequence[int] | np.ndarray | None = None,
) -> Interactions:
    """Build :class:`Interactions` from one record per event.

    ``catalogue_ids`` fixes the item index order (events of products outside it are dropped);
    without it the items are the sorted distinct ``item_ids``.
    """
    users = np.asarray(user_ids, dtype=np.int64)
    items = np.asarray(item_ids, dtype=np.int64)
    n = len(users)
    if len(items) != n or len(event_types) != n or len(timestamps) != n:
        raise ValueError("user_ids, item_ids, event_types and timestamps must have equal lengths")
    catalogue = (
        np.unique(items) if catalogue_ids is None else np.asarray(catalogue_ids, dtype=np.int64)
    )
    order = np.argsort(catalogue, kind="stable")
    pos = np.searchsorted(catalogue[order], items)
    pos = np.clip(pos, 0, max(len(catalogue) - 1, 0))
    known = (catalogue[order][pos] == items) if len(catalogue) else np.zeros(n, dtype=bool)
    item_idx = order[pos][known] if len(catalogue) else np.empty(0, dtype=np.int64)
    user_keys, user_idx = np.unique(users[known], return_inverse=True)
    types = list(EVENT_TYPES)
    codes = np.empty(n, dtype=np.int8)
    for row, name in enumerate(event_types):
        if name not in types:
            types.append(name)
        codes[row] = types.index(name)
    qty = (
        np.ones(n, dtype=np.float32)
        if quantities is None
        else np.asarray(quantities, dtype=np.float32)
    )
    basket = np.asarray(baskets, dtype=np.int64)[known] if baskets is not None else None
    return Interactions(
        user_idx=user_idx.astype(np.int32),
        item_idx=item_idx.astype(np.int32),
        event_code=codes[known],
        timestamp=np.asarray(timestamps, dtype=np.float64)[known],
        quantity=qty[known],
        user_ids=user_keys.astype(np.int64),
        item_ids=catalogue,
        event_types=tuple(types),
        basket=basket if basket is not None else np.empty(0, dtype=np.int64),
    )


def interactions_from_columns(
    *,
    customer: np.ndarray,
    product: np.ndarray,
    code: np.ndarray,
    timestamp: np.ndarray,
    quantity: np.ndarray,
    basket: np.ndarray,
    event_types: Sequence[str],
    catalogue_ids: np.ndarray,
) -> Interactions:
    """:class:`Interactions` from columns of event codes (no Python object per event).

    ``catalogue_ids`` (ascending) fixes the item order; events of other products are dropped.
    ``code`` indexes ``event_types``.
    """
    catalogue = np.asarray(catalogue_ids, dtype=np.int64)
    if len(catalogue) > 1 and not bool(np.all(np.diff(catalogue) > 0)):
        raise ValueError("catalogue_ids: must be strictly increasing")
    items = np.asarray(product, dtype=np.int64)
    if len(catalogue):
        pos = np.minimum(np.searchsorted(catalogue, items), len(catalogue) - 1)
        known = catalogue[pos] == items
    else:
        pos = np.zeros(len(items), dtype=np.int64)
        known = np.zeros(len(items), dtype=bool)
    everything = bool(known.all())
    pick = slice(None) if everything else known
    user_keys, user_idx = np.unique(np.asarray(customer, dtype=np.int64)[pick], return_inverse=True)
    return Interactions(
        user_idx=user_idx.reshape(-1).astype(np.int32),
        item_idx=pos[pick].astype(np.int32),
        event_code=np.asarray(code, dtype=np.int8)[pick],
        timestamp=np.asarray(timestamp, dtype=np.float64)[pick],
        quantity=np.asarray(quantity, dtype=np.float32)[pick],
        user_ids=user_keys.astype(np.int64),
        item_ids=catalogue,
        event_types=tuple(event_types),
        basket=np.asarray(basket, dtype=np.int64)[pick],
    )


def tie_keys(inter: Interactions, events: np.ndarray | None = None, *, seed: int = 0) -> np.ndarray:
    """A pseudo-random ``uint64`` key per event (of ``events``, indices into ``inter``; all
    events without it) that orders events with equal timestamps.

    The lines of one invoice share its timestamp, and their order in the file (the order of the
    rows) is an artifact of the export: a split that held out the last *row* of the last basket
    would make "which product of the basket is held out" follow the import order, which a model
    of order can learn. The key is a hash (splitmix64) of the customer's id, the product's id and
    ``seed`` only, so it is the same in any subset of the events (a training split, a validation
    split), tells nothing about row order, and orders the products of one basket differently for
    different customers. Every place where the order of equal timestamps decides something
    breaks ties with it (docs/evaluation.md, "Protocol").
    """
    users, items = inter.user_idx, inter.item_idx
    if events is not None:
        users, items = users[events], items[events]
    with np.errstate(over="ignore"):
        x = (
            inter.user_ids[users].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + inter.item_ids[items].astype(np.uint64)
            + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03)
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(x ^ (x >> np.uint64(31)))


def decay(timestamps: np.ndarray, *, now: float, half_life_days: float) -> np.ndarray:
    """0.5 ** (age / half-life); events in the future count as new. ``inf`` disables decay."""
    if not np.isfinite(half_life_days):
        return np.ones(len(timestamps), dtype=np.float64)
    if half_life_days <= 0:
        raise ValueError(f"half_life_days: must be positive, got {half_life_days!r}")
    age_days = np.maximum(now - np.asarray(timestamps, dtype=np.float64), 0.0) / DAY_SECONDS
    return np.power(0.5, age_days / half_life_days)


def behaviour_weight_array(
    event_types: Sequence[str], behaviour_weights: Mapping[str, float]
) -> np.ndarray:
    """The weight of each event type code (0 for types without a configured weight)."""
    return np.array([float(behaviour_weights.get(t, 0.0)) for t in event_types], dtype=np.float64)


def event_weights(
    interactions: Interactions,
    *,
    behaviour_weights: Mapping[str, float],
    half_life_days: float = float("inf"),
    now: float | None = None,
) -> np.ndarray:
    """Per-event weight: behaviour weight x time decay (relative to ``now``, default the last)."""
    per_type = behaviour_weight_array(interactions.event_types, behaviour_weights)
    weights = per_type[interactions.event_code]
    if len(interactions) and np.isfinite(half_life_days):
        ref = float(interactions.timestamp.max()) if now is None else now
        weights = weights * decay(interactions.timestamp, now=ref, half_life_days=half_life_days)
    return weights


def interaction_matrix(
    interactions: Interactions,
    *,
    behaviour_weights: Mapping[str, float],
    half_life_days: float = float("inf"),
    now: float | None = None,
    aggregate: str = "sum",
) -> sp.csr_matrix:
    """The user x item matrix of event weights (float32 CSR).

    ``aggregate="sum"`` adds the weights of repeated events; ``"max"`` keeps the strongest
    single event per (user, item), which is what EASE and item-kNN want: buying a product ten
    times says the customer likes it, not that it is ten times as similar to everything else.
    """
    weights = event_weights(
        interactions, behaviour_weights=behaviour_weights, half_life_days=half_life_days, now=now
    )
    keep = weights > 0
    rows = interactions.user_idx[keep]
    cols = interactions.item_idx[keep]
    vals = weights[keep]
    shape = (interactions.n_users, interactions.n_items)
    if aggregate == "sum":
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float64)
    elif aggregate == "max":
        key = rows.astype(np.int64) * max(shape[1], 1) + cols
        order = np.lexsort((-vals, key))
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        pick = order[first]
        matrix = sp.csr_matrix((vals[pick], (rows[pick], cols[pick])), shape=shape)
    else:
        raise ValueError(f"aggregate: expected 'sum' or 'max', got {aggregate!r}")
    matrix.sum_duplicates()
    return matrix.astype(np.float32).tocsr()
