"""Exposure slots: a small quota of list positions kept for products without behaviour.

A product nobody has bought, viewed or carted yet has no collaborative, popularity or trending
score, so a blend tuned for warm customers ranks it below the products those sources know,
however close it is to the customer's taste. The slots give such products a fixed, small share
of each list: in every run of ``run`` positions, the last ``slots`` are exposure positions. At
an exposure position the list must hold at least as many products without behaviour as there
were exposure positions so far; when the ranked list does not (counting those that rank there
on their own), the best product of the exposure pool (products without behaviour similar enough
to the customer, best first) takes the position and the ranked items behind it move down one.

Framework-free and generic over the keys it places (engine rows offline, ranked items when
serving): :func:`exposure_positions` says where the slots are, :func:`place_exposure` fills them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def exposure_positions(k: int, slots: int, *, run: int = 10) -> list[int]:
    """The 0-based exposure positions of a list of ``k``: in each run of ``run`` positions the
    last ``slots``. A list shorter than a run is one run of its own length with its share of
    the slots (rounded, at least 1), never more than half of it: with 2 slots in 10, a list of
    4 has 1 (position 3), a list of 8 has 2 (6 and 7), a list of 1 none."""
    if k < 1 or slots < 1:
        return []
    length = min(run, k)
    n = slots if length == run else max(1, math.floor(slots * length / run + 0.5))
    n = min(n, length // 2)
    return [p for p in range(k) if p % length >= length - n]


def place_exposure(
    listed: Sequence[K],
    cold: Sequence[bool],
    pool: Sequence[K],
    *,
    k: int,
    slots: int,
    run: int = 10,
) -> list[tuple[K, bool]]:
    """The first ``k`` keys of ``listed`` (the ranked list, best first) with the exposure slots
    filled from ``pool`` (eligible products without behaviour, best first), as ``(key, slotted)``.

    ``cold[i]`` says whether ``listed[i]`` is itself a product without behaviour: it counts
    towards the quota where it stands. A pool product also listed further down moves up to the
    slot (it is listed once). When the pool runs out the ranked order goes on; when ``listed``
    runs out the list ends, shorter than ``k``.
    """
    if len(cold) != len(listed):
        raise ValueError(f"cold: expected {len(listed)} flags, got {len(cold)}")
    at = set(exposure_positions(k, slots, run=run))
    out: list[tuple[K, bool]] = []
    placed: set[K] = set()
    next_listed = 0
    next_pool = 0
    quota = exposed = 0
    for position in range(k):
        if position in at:
            quota += 1
            if exposed < quota:
                while next_pool < len(pool) and pool[next_pool] in placed:
                    next_pool += 1
                if next_pool < len(pool):
                    chosen = pool[next_pool]
                    next_pool += 1
                    out.append((chosen, True))
                    placed.add(chosen)
                    exposed += 1
                    continue
        while next_listed < len(listed) and listed[next_listed] in placed:
            next_listed += 1
        if next_listed >= len(listed):
            break
        key = listed[next_listed]
        out.append((key, False))
        placed.add(key)
        exposed += bool(cold[next_listed])
        next_listed += 1
    return out
