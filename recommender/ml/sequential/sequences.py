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

from collections.abc import Sequence
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
    gaps = np.zeros(len(chosen), dtype=np.int64)
    for u in np.flatnonzero(counts > 1).tolist():
        start, end = int(offsets[u]), int(offsets[u + 1])
        gaps[start:end] = gap_buckets(times[start:end])
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
    seqs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | Sequences,
    *,
    max_len: int,
    pad: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training windows: ``(items, types, gaps, targets)``, each ``(w, max_len)``, left-padded.

    A sequence of length L gives inputs ``s[0:L-1]`` and targets ``s[1:L]``, cut from the end
    into windows of ``max_len`` steps (a long history gives several); padding is ``pad`` for
    items and targets, 0 for types and gaps.
    """
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    users = range(seqs.n_users) if isinstance(seqs, Sequences) else range(len(seqs))
    for u in users:
        items, types, gaps = seqs.of(u) if isinstance(seqs, Sequences) else seqs[u]
        if len(items) < 2:
            continue
        end = len(items)
        while end > 1:
            start = max(0, end - 1 - max_len)
            parts.append(
                (
                    items[start : end - 1],
                    types[start : end - 1],
                    gaps[start : end - 1],
                    items[start + 1 : end],
                )
            )
            end -= max_len
    w = len(parts)
    out_items = np.full((w, max_len), pad, dtype=np.int64)
    out_types = np.zeros((w, max_len), dtype=np.int64)
    out_gaps = np.zeros((w, max_len), dtype=np.int64)
    out_targets = np.full((w, max_len), pad, dtype=np.int64)
    for i, (it, ty, ga, ta) in enumerate(parts):
        k = len(it)
        out_items[i, max_len - k :] = it
        out_types[i, max_len - k :] = ty
        out_gaps[i, max_len - k :] = ga
        out_targets[i, max_len - k :] = ta
    return out_items, out_types, out_gaps, out_targets


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
