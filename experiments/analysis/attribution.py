"""Attribution of behaviour events to served lists.

Two rules, in this order (docs/experiments.md):

1. **Explicit**: an event that carries a ``recommendation_id`` belongs to that list, whatever
   its product or time. An id that names no list of the experiment is not its event (and an id
   no list has at all is counted as unknown by the caller).
2. **Last touch**: an event without one (a click, add to cart or purchase of a product) belongs
   to the latest list served to the same visitor that showed that product, if the event came
   no later than the window after it (24 hours for clicks, 7 days for carts and purchases by
   default) and not before it. Otherwise it belongs to no list.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# The event types attributed, and the counter each one increments.
COUNTED = {"click": "clicks", "add_to_cart": "carts", "purchase": "purchases"}

Rule = Literal["explicit", "window", "none"]


@dataclass(frozen=True, slots=True)
class Shown:
    """One served list: its id, visitor, variant, time (epoch seconds) and products."""

    recommendation_id: str
    visitor: str
    variant: str
    at: float
    product_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Action:
    """One event to attribute. ``visitors``: the keys it may belong to (its customer's, and
    its session's when it has one); ``recommendation_id``: "" when none was sent."""

    event_id: str
    visitors: tuple[str, ...]
    product_id: str | None
    event_type: str
    at: float
    revenue: float = 0.0
    recommendation_id: str = ""


@dataclass(frozen=True, slots=True)
class Windows:
    """Seconds after a list during which an event without an id is attributed to it."""

    click: float = 24 * 3600.0
    purchase: float = 7 * 24 * 3600.0

    def of(self, event_type: str) -> float:
        return self.click if event_type == "click" else self.purchase


@dataclass(frozen=True, slots=True)
class Attributed:
    action: Action
    shown: Shown | None
    rule: Rule


def attribute(
    shown: Sequence[Shown], actions: Iterable[Action], *, windows: Windows
) -> list[Attributed]:
    """Each action of a counted type with the list it is attributed to (None: no list)."""
    by_id = {s.recommendation_id: s for s in shown}
    # (visitor, product) -> lists showing it, by time; ties keep the served order.
    showings: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for order, s in enumerate(shown):
        for product_id in set(s.product_ids):
            showings[(s.visitor, product_id)].append((s.at, order))
    for times in showings.values():
        times.sort()
    out: list[Attributed] = []
    for action in actions:
        if action.event_type not in COUNTED:
            continue
        if action.recommendation_id:
            match = by_id.get(action.recommendation_id)
            out.append(Attributed(action, match, "explicit" if match else "none"))
            continue
        best: tuple[float, int] | None = None
        if action.product_id is not None:
            earliest = action.at - windows.of(action.event_type)
            for visitor in action.visitors:
                times = showings.get((visitor, action.product_id), [])
                # The latest showing at or before the event...
                i = bisect.bisect_right(times, (action.at, len(shown))) - 1
                # ...within the window.
                if i >= 0 and times[i][0] >= earliest and (best is None or times[i] > best):
                    best = times[i]
        if best is None:
            out.append(Attributed(action, None, "none"))
        else:
            out.append(Attributed(action, shown[best[1]], "window"))
    return out
