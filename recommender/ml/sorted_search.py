"""Many keys searched in one large sorted array (product ids, neighbour columns). Framework-free.

A request looks up hundreds to tens of thousands of keys at a time (the candidates' engine rows,
the look-alikes of products without events, the columns of the customer's neighbour lists). In
the order they come, each key's binary search starts from the whole array and misses the caches
on its last steps: numpy's ``searchsorted`` of 20,000 random keys in 1,000,000 sorted ids took
8.3 ms here. Sorted keys visit the array in order (numpy also narrows each search from the
previous key's place), so sorting them first and putting the positions back costs less than the
misses it saves: 1.5 ms for the same search, and already less from about a thousand keys in a
12,000-entry array (``bench/sorted_search.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

# Below this many keys the sort costs more than it saves.
SORT_KEYS_FROM = 512


def search_sorted(array: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.searchsorted(array, keys)`` (the leftmost insertion points), in the keys' order; for
    many keys out of order, found by searching them sorted."""
    if len(keys) < SORT_KEYS_FROM or bool(np.all(keys[1:] >= keys[:-1])):
        return np.searchsorted(array, keys)
    order = np.argsort(keys)
    positions = np.empty(len(keys), dtype=np.intp)
    positions[order] = np.searchsorted(array, keys[order])
    return positions


def _matches(array: np.ndarray, keys: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``keys``: its insertion point in the sorted ``array``, clipped into it, and
    whether ``array`` holds the key there."""
    keys = np.asarray(keys, dtype=np.int64)
    if not len(keys) or not len(array):
        return np.zeros(len(keys), dtype=np.intp), np.zeros(len(keys), dtype=bool)
    at = np.minimum(search_sorted(array, keys), len(array) - 1)
    return at, np.asarray(array[at] == keys, dtype=bool)


def rows_in_sorted(array: np.ndarray, keys: Sequence[int] | np.ndarray) -> np.ndarray:
    """The position of each of ``keys`` in the sorted, duplicate-free ``array`` (int64), -1 for a
    key the array does not hold."""
    at, found = _matches(array, keys)
    return np.where(found, at, -1).astype(np.int64)


def in_sorted(array: np.ndarray, keys: Sequence[int] | np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in the sorted ``array``: ``np.isin(keys, array)``, by binary
    search.

    ``np.isin`` sorts both arrays together on every call: for a request's few hundred keys
    against a dozen excluded products that fixed cost is several times the searches', and
    against a large sorted array (the index's ids) it re-sorts what is already sorted.
    (For many thousands of keys against a small array ``np.isin`` is faster: each binary
    search's branches mispredict; callers there keep it.)"""
    return _matches(array, keys)[1]


def sorted_ids(ids: Collection[int]) -> np.ndarray:
    """``ids`` (a set of product ids) as an ascending int64 array, for :func:`in_sorted`."""
    return np.sort(np.fromiter(ids, dtype=np.int64, count=len(ids)))


# A table indexed by id is used while the largest id is at most this many times the number of
# ids (plus a constant): its memory (4 bytes an entry) stays proportional to the catalogue.
DENSE_IDS_FACTOR = 4
_DENSE_IDS_SLACK = 1024


class IdRows:
    """The position of ids in a sorted, duplicate-free int64 array of ids (an engine's or a
    model's products), -1 for an id it does not hold: :func:`rows_in_sorted` of ``ids``.

    Product ids are the database's integer keys, dense in practice, so the positions are read
    from a table indexed by id, built once (4 bytes a product): a request's lookups of a few
    hundred ids each in 100,000 (its history, its candidates, the sequential model's rows of
    them) cost a binary search each, with a cache miss and a mispredicted branch on most steps
    (the engine before and after: docs/benchmarks.md, "Fourteenth session"). Ids too sparse
    for a table (or negative) are searched."""

    __slots__ = ("_table", "ids")

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._table: np.ndarray | None = None
        if (
            len(ids)
            and int(ids[0]) >= 0
            and int(ids[-1]) < DENSE_IDS_FACTOR * len(ids) + _DENSE_IDS_SLACK
            and len(ids) < np.iinfo(np.int32).max
        ):
            # One entry past the largest id stays -1: ids out of range are sent there.
            table = np.full(int(ids[-1]) + 2, -1, dtype=np.int32)
            table[ids] = np.arange(len(ids), dtype=np.int32)
            table.flags.writeable = False
            self._table = table

    def __call__(self, keys: Sequence[int] | np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        table = self._table
        if table is None:
            return rows_in_sorted(self.ids, keys)
        outside = len(table) - 1
        at = np.minimum(keys, outside)
        at[at < 0] = outside
        return table[at].astype(np.int64)
