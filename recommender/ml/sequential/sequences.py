"""Customers' product sequences for the sequential model, built from :class:`Interactions`.

A customer's sequence is the products they touched, each once, at its first event, in time
order (equal times, the lines of one basket, in the seeded hash order of
:func:`recommender.ml.interactions.tie_keys`, never in row order, so the model cannot learn the
order of an export's lines): the engine never recommends a product the customer already has
(``exclude_event_types``; the offline protocol masks the whole history), so the model learns
which *new* product comes next. Each step carries the event type of that first event and the
time since the previous step, bucketed on a log scale (:func:`gap_buckets`).

The validation split (:func:`holdout_last`) holds out the last product of each sequence with at
least ``min_items`` products: exactly the product :func:`recommender.evaluation.protocols.
leave_last_out` holds out (the one whose first event is latest), which a test asserts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.ml.interactions import Interactions, tie_keys

# Time-gap buckets: 0 for the first step of a sequence, 1 for a gap under a minute (the same
# basket), then one bucket per doubling of hours, capped.
GAP_BUCKETS = 18
_HOUR = 3600.0


def gap_buckets(timestamps: np.ndarray) -> np.ndarray:
    """The bucket of each step's gap to the previous step (0 for the first)."""
    stamps = np.asarray(timestamps, dtype=np.float64)
    out = np.zeros(len(stamps), dtype=np.int64)
    if len(stamps) > 1:
        gaps = np.maximum(np.diff(stamps), 0.0)
        hours = gaps / _HOUR
        bucket = 2 + np.floor(np.log2(1.0 + hours)).astype(np.int64)
        bucket = np.where(gaps < 60.0, 1, bucket)
        out[1:] = np.minimum(bucket, GAP_BUCKETS - 1)
    return out


@dataclass(frozen=True)
class Sequences:
    """Every customer's sequence as flat arrays with offsets (CSR-like).

    ``items[offsets[u]:offsets[u + 1]]`` is customer ``u``'s sequence (indices into the
    catalogue), ``types`` the event-type codes, ``gaps`` the gap buckets, ``times`` the seconds.
    """

    items: np.ndarray  # int64
    types: np.ndarray  # int64
    gaps: np.ndarray  # int64
    times: np.ndarray  # float64
    offsets: np.ndarray  # int64, n_users + 1

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def of(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start, end = int(self.offsets[user]), int(self.offsets[user + 1])
        return self.items[start:end], self.types[start:end], self.gaps[start:end]


def sequences_from(inter: Interactions) -> Sequences:
    """Each customer's first events per product, in time order (ties by :func:`tie_keys`)."""
    n = len(inter)
    order = np.lexsort((np.arange(n), tie_keys(inter), inter.timestamp, inter.user_idx))
    users = inter.user_idx[order].astype(np.int64)
    items = inter.item_idx[order].astype(np.int64)
    # The first event of each (user, product) pair, kept in the sorted order.
    key = users * (inter.n_items + 1) + items
    _, first = np.unique(key, return_index=True)
    first.sort()
    chosen = order[first]
    users = users[first]
    counts = np.bincount(users, minlength=inter.n_users)
    offsets = np.zeros(inter.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    times = inter.timestamp[chosen].astype(np.float64)
    # Every step's gap to the step before it, in one pass; a customer's first step has none.
    gaps = gap_buckets(times)
    gaps[offsets[:-1][counts > 0]] = 0
    return Sequences(
        items=inter.item_idx[chosen].astype(np.int64),
        types=inter.event_code[chosen].astype(np.int64),
        gaps=gaps,
        times=times,
        offsets=offsets,
    )


@dataclass(frozen=True)
class Holdout:
    """The validation split: the training sequences and each eligible customer's last product."""

    train: Sequences
    users: np.ndarray  # int64 customers with a held-out product
    items: np.ndarray  # int64 their held-out product


def holdout_last(seqs: Sequences, *, min_items: int = 3) -> Holdout:
    """Hold out the last product of every sequence with at least ``min_items`` products."""
    lengths = seqs.lengths()
    eligible = np.flatnonzero(lengths >= max(min_items, 2))
    keep = np.ones(len(seqs.items), dtype=bool)
    last = seqs.offsets[eligible + 1] - 1
    keep[last] = False
    new_lengths = lengths.copy()
    new_lengths[eligible] -= 1
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=offsets[1:])
    train = Sequences(
        items=seqs.items[keep],
        types=seqs.types[keep],
        gaps=seqs.gaps[keep],
        times=seqs.times[keep],
        offsets=offsets,
    )
    return Holdout(train=train, users=eligible.astype(np.int64), items=seqs.items[last])


def windows(
    seqs: Sequences, *, max_len: int, pad: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training windows: ``(items, types, gaps, targets)``, each ``(w, max_len)``, left-padded.

    A sequence of length L gives inputs ``s[0:L-1]`` and targets ``s[1:L]``, cut from the end
    into windows of ``max_len`` steps (a long history gives several; customer by customer, the
    newest window first); padding is ``pad`` for items and targets, 0 for types and gaps.

    Built in blocks of windows without a loop over customers, in the narrowest integer types
    that hold the values (int32 products, int8 types and gaps): a million customers' windows
    are about 0.6 GB, not 2 GB of int64. Callers widen a batch to int64 for indexing.
    """
    lengths = seqs.lengths()
    users = np.flatnonzero(lengths >= 2)
    length = lengths[users]
    count = (length - 2) // max_len + 1  # Windows ending at L, L - max_len, ... while > 1.
    w = int(count.sum())
    first = np.cumsum(count) - count
    owner = np.repeat(np.arange(len(users)), count)
    step = np.arange(w, dtype=np.int64) - np.repeat(first, count)
    end = length[owner] - step * max_len
    base = seqs.offsets[users][owner]  # Where each window's customer starts.
    start = base + np.maximum(0, end - 1 - max_len)
    # Column c of a window holds position ``origin + c``, where that is at or after ``start``.
    origin = base + end - 1 - max_len
    item_type = np.int32 if pad <= np.iinfo(np.int32).max else np.int64
    out_items = np.full((w, max_len), pad, dtype=item_type)
    out_types = np.zeros((w, max_len), dtype=_small(seqs.types))
    out_gaps = np.zeros((w, max_len), dtype=_small(seqs.gaps))
    out_targets = np.full((w, max_len), pad, dtype=item_type)
    columns = np.arange(max_len, dtype=np.int64)
    for block in range(0, w, _WINDOW_BLOCK):
        part = slice(block, block + _WINDOW_BLOCK)
        at = origin[part, None] + columns[None, :]
        real = at >= start[part, None]
        at = np.where(real, at, 0)
        out_items[part] = np.where(real, seqs.items[at], pad)
        out_types[part] = np.where(real, seqs.types[at], 0)
        out_gaps[part] = np.where(real, seqs.gaps[at], 0)
        out_targets[part] = np.where(real, seqs.items[at + 1], pad)
    return out_items, out_types, out_gaps, out_targets


# Windows built at a time by :func:`windows` (its temporaries: a few such blocks of int64).
_WINDOW_BLOCK = 65_536


def _small(values: np.ndarray) -> type[np.signedinteger]:
    """The narrowest signed integer type that holds ``values`` (non-negative codes)."""
    top = int(values.max()) if len(values) else 0
    for kind in (np.int8, np.int16, np.int32):
        if top <= np.iinfo(kind).max:
            return kind
    return np.int64


def last_window(
    items: np.ndarray, types: np.ndarray, gaps: np.ndarray, *, max_len: int, pad: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The newest ``max_len`` steps of one sequence, left-padded (the input of a query)."""
    items, types, gaps = items[-max_len:], types[-max_len:], gaps[-max_len:]
    k = len(items)
    out_items = np.full(max_len, pad, dtype=np.int64)
    out_types = np.zeros(max_len, dtype=np.int64)
    out_gaps = np.zeros(max_len, dtype=np.int64)
    if k:
        out_items[max_len - k :] = items
        out_types[max_len - k :] = types
        out_gaps[max_len - k :] = gaps
    return out_items, out_types, out_gaps
