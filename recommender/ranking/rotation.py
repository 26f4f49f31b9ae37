"""Rotation: demoting the products a visitor was shown repeatedly without touching them.

Pure functions over what the services read (the visitor's recent served lists from the
recommendation log, and when they last touched each product), so nothing here touches the
database. :func:`rotation_factors` counts, per product, the lists within the window that showed
it after the visitor's last interaction with it; a product shown ``min_impressions`` times or
more gets the factor ``(1 - rate) ** (shown - min_impressions + 1)``. :class:`Demote` applies the
factors as the engine's ``rules=`` hook (on the scored head, before diversity and the cut to
k), like a merchandising bury. See docs/merchandising.md, "Rotation".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from .types import RankedItem

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Rotation:
    """One list's rotation settings (``EngineConfig.rotation[list]``)."""

    rate: float
    hours: float
    min_impressions: int

    @classmethod
    def from_settings(cls, values: Mapping[str, float]) -> Rotation:
        return cls(
            rate=float(values["rate"]),
            hours=float(values["hours"]),
            min_impressions=int(values["min_impressions"]),
        )

    @property
    def seconds(self) -> float:
        return self.hours * 3600.0

    def factor(self, shown: int) -> float:
        """The score factor of a product shown ``shown`` times (1 below ``min_impressions``)."""
        if shown < self.min_impressions:
            return 1.0
        return (1.0 - self.rate) ** (shown - self.min_impressions + 1)


def rotation_factors(
    lists: Iterable[tuple[float, Sequence[K]]],
    rotation: Rotation,
    *,
    now: float,
    touched: Mapping[K, float] | None = None,
) -> dict[K, float]:
    """The score factor (< 1) of every product to demote.

    ``lists``: the visitor's served lists as ``(served at, products)``, epoch seconds. A list
    counts for a product when it was served within ``rotation.hours`` before ``now`` (or later:
    another server's clock may run a little ahead) and after the visitor last touched the
    product (``touched``: product -> epoch seconds of the newest interaction), so an interaction
    starts its count again. A product listed twice in one list counts once.
    """
    since = now - rotation.seconds
    last = touched or {}
    shown: Counter[K] = Counter()
    for at, products in lists:
        if at < since:
            continue
        for product in set(products):
            if at > last.get(product, -math.inf):
                shown[product] += 1
    return {
        product: rotation.factor(n) for product, n in shown.items() if n >= rotation.min_impressions
    }


@dataclass(frozen=True, slots=True)
class Demote:
    """Multiply the score of each product in ``factors`` (product id -> factor) by its factor:
    a rule for the engine's ``rules=`` hook (``list[RankedItem] -> list[RankedItem]``)."""

    factors: Mapping[int, float]

    def __call__(self, items: list[RankedItem]) -> list[RankedItem]:
        out = []
        for item in items:
            factor = self.factors.get(item.product_id)
            out.append(item if factor is None else replace(item, score=item.score * factor))
        return out

    def __bool__(self) -> bool:
        return bool(self.factors)
