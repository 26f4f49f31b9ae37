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

from collections.abc import Sequence

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


def rows_in_sorted(array: np.ndarray, keys: Sequence[int] | np.ndarray) -> np.ndarray:
    """The position of each of ``keys`` in the sorted, duplicate-free ``array`` (int64), -1 for a
    key the array does not hold."""
    keys = np.asarray(keys, dtype=np.int64)
    if not len(keys) or not len(array):
        return np.full(len(keys), -1, dtype=np.int64)
    at = np.minimum(search_sorted(array, keys), len(array) - 1)
    return np.where(array[at] == keys, at, -1).astype(np.int64)
