"""Per-process values reloaded at most every few seconds: the one helper behind the verified API
tokens (``accounts``), the compiled merchandising rules and the serving engine and vector index.

Each holds values read on almost every request whose source changes rarely. Between checks a
value is returned without a lock or a query; once ``seconds()`` have passed since its last check
the next read calls ``reload`` under the cache's lock, with the value it holds (so a reload can
keep what did not change, or keep serving it when a newer one cannot be loaded). Framework-free:
the callers pass their setting as ``seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# A key never checked, or asked to be checked again at the next read.
_STALE = -float("inf")


class Reloading(Generic[K, V]):
    """Values by key, each checked again at most every ``seconds()`` (read at every call, so a
    changed setting applies at once). ``max_entries`` bounds the keys held: adding a key to a
    full cache first forgets every other one (a single-value cache passes 1)."""

    def __init__(self, seconds: Callable[[], float], *, max_entries: int | None = None) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        # key -> (value, monotonic time of its last check). Replaced whole, never mutated in
        # place, so a read without the lock sees a consistent entry.
        self._entries: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def fresh(self, key: K) -> V | None:
        """The value held for ``key`` if it was checked within ``seconds()``, else None."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[1] < self._seconds():
            return entry[0]
        return None

    def get(self, key: K, reload: Callable[[V | None], V | None]) -> V | None:
        """The value for ``key``: the held one while fresh, else ``reload(held or None)``.

        What ``reload`` returns is held (and checked again after ``seconds()``); None forgets
        the key, so the next read reloads. An exception from ``reload`` leaves the held value
        as it was, due for a check at the next read.
        """
        value = self.fresh(key)
        if value is not None:
            return value
        with self._lock:
            entry = self._entries.get(key)
            value = reload(entry[0] if entry is not None else None)
            if value is None:
                self._entries.pop(key, None)
                return None
            if (
                self._max_entries is not None
                and key not in self._entries
                and len(self._entries) >= self._max_entries
            ):
                self._entries.clear()
            self._entries[key] = (value, time.monotonic())
            return value

    def held(self, key: K) -> V | None:
        """The value held for ``key`` however old, without a check."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def recheck(self) -> None:
        """Make the next read of every key check again (keeping the values for the reload)."""
        with self._lock:
            self._entries = {key: (value, _STALE) for key, (value, _) in self._entries.items()}

    def forget(self, key: K | None = None, *, then: Callable[[], None] | None = None) -> None:
        """Drop ``key``'s value, or every value without one; ``then`` runs under the same lock
        (so no reload sees a half-forgotten state)."""
        with self._lock:
            if key is None:
                self._entries = {}
            else:
                self._entries.pop(key, None)
            if then is not None:
                then()


class AsOf(Generic[K, V]):
    """Values by key read as of a caller's clock (epoch seconds, a request's ``now``), each good
    for the clocks from its read to ``seconds()`` later: a read for an earlier clock, or one
    more than ``seconds()`` later, misses (so a request replayed at a past moment never sees
    what was read after it). ``max_entries`` bounds the keys: storing into a full cache first
    forgets every other key. ``seconds()`` at or below 0 turns the cache off.

    For values many requests share and that may be a stated few seconds old (the social
    source's networks); unlike :class:`Reloading` it is filled in batches by its caller
    (:meth:`get_many`, then :meth:`put`), without a lock: a race costs at most a second read.
    """

    def __init__(self, seconds: Callable[[], float], *, max_entries: int) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}

    def enabled(self) -> bool:
        return self._seconds() > 0

    def get(self, key: K, now: float) -> V | None:
        """The value held for ``key`` if it was read at a clock in ``[now - seconds(), now]``."""
        found, _ = self.get_many((key,), now)
        return found.get(key)

    def get_many(self, keys: Iterable[K], now: float) -> tuple[dict[K, V], list[K]]:
        """(the values held for ``keys`` as :meth:`get` finds them, the keys that missed)."""
        found: dict[K, V] = {}
        missing: list[K] = []
        seconds = self._seconds()
        entries = self._entries
        for key in keys:
            entry = entries.get(key)
            if entry is not None and seconds > 0 and entry[1] <= now <= entry[1] + seconds:
                found[key] = entry[0]
            else:
                missing.append(key)
        return found, missing

    def put(self, key: K, value: V, now: float) -> None:
        """Hold ``value`` for ``key`` as read at clock ``now`` (nothing while turned off)."""
        if self._seconds() <= 0:
            return
        if key not in self._entries and len(self._entries) >= self._max_entries:
            self._entries = {}
        self._entries[key] = (value, now)

    def forget(self) -> None:
        """Drop every value (a write in this process made them wrong)."""
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)
