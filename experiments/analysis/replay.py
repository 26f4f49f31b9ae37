"""The replay simulator's framework-free parts: visits from a shop's real events, the clicks,
carts and purchases a replayed list records, and the A/A calibration of the statistics.

The replay method (Li, Chu, Langford and Wang, WSDM 2011) adapted to lists: the shop's real
behaviour after a date is cut into **visits** (a customer's events with no pause longer than
``gap`` seconds between them); each visit asks for the customer's list just before its first
event, and the list **records** a click for every listed product the customer really touched
during the visit (any event with that product), a cart for those carted or bought, a purchase
for those bought (with their value as revenue). Products the customer touched that the list did
not show record nothing for it. docs/experiments.md ("Replay") states the method's biases.

The A/A calibration re-splits one replay's visitors with many salts (every variant of an A/A
experiment serves the same list, so a visitor's totals do not depend on their variant) and runs
the experiment statistics (:mod:`.stats`) on each split: a calibrated test calls about 5% of
them significant at alpha = 0.05, and the sample-ratio check fires on a deliberately skewed split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from . import stats
from .assignment import assign
from .attribution import Action

# A new visit starts after this long without an event (the customary 30-minute web session).
DEFAULT_GAP_SECONDS = 30 * 60.0
# Event types that count as putting a product in the cart (a purchase passes through it).
CART_TYPES = frozenset({"add_to_cart", "purchase"})


@dataclass(frozen=True, slots=True)
class ReplayedEvent:
    """One real event of the replayed period: customer and product ids as the shop sends them
    (``product_id`` None for a search), time in epoch seconds, ``value`` of a purchase."""

    customer: str
    product_id: str | None
    event_type: str
    at: float
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class Touch:
    """What the customer did with one product during a visit: first touched at ``first_at``;
    carted (added to the cart or bought); bought, for ``revenue`` (the sum of its purchase
    values in the visit)."""

    product_id: str
    first_at: float
    carted: bool = False
    purchased: bool = False
    revenue: float = 0.0


@dataclass(frozen=True, slots=True)
class Visit:
    """A customer's events with no gap longer than the replay's between two of them. The list
    is asked for at ``start`` (its history: the events before it)."""

    customer: str
    start: float
    end: float
    touches: tuple[Touch, ...]

    @property
    def visitor(self) -> str:
        return f"c:{self.customer}"


def visits_of(events: Iterable[ReplayedEvent], *, gap: float = DEFAULT_GAP_SECONDS) -> list[Visit]:
    """The visits in ``events`` (any order), by start time then customer. ``gap`` must be
    positive; events ``gap`` seconds or less apart belong to the same visit."""
    if gap <= 0:
        raise ValueError(f"gap: a positive number of seconds, not {gap}")
    by_customer: dict[str, list[ReplayedEvent]] = defaultdict(list)
    for event in events:
        by_customer[event.customer].append(event)
    visits: list[Visit] = []
    for customer, own in by_customer.items():
        own.sort(key=lambda e: e.at)
        start = 0
        for i in range(1, len(own) + 1):
            if i == len(own) or own[i].at - own[i - 1].at > gap:
                visits.append(_visit(customer, own[start:i]))
                start = i
    visits.sort(key=lambda v: (v.start, v.customer))
    return visits


def _visit(customer: str, events: Sequence[ReplayedEvent]) -> Visit:
    touches: dict[str, dict[str, float | bool]] = {}
    for e in events:
        if e.product_id is None:
            continue
        t = touches.setdefault(
            e.product_id, {"first_at": e.at, "carted": False, "purchased": False, "revenue": 0.0}
        )
        if e.event_type in CART_TYPES:
            t["carted"] = True
        if e.event_type == "purchase":
            t["purchased"] = True
            t["revenue"] = float(t["revenue"]) + e.value
    return Visit(
        customer=customer,
        start=events[0].at,
        end=events[-1].at,
        touches=tuple(
            Touch(
                product_id=product_id,
                first_at=float(t["first_at"]),
                carted=bool(t["carted"]),
                purchased=bool(t["purchased"]),
                revenue=round(float(t["revenue"]), 2),
            )
            for product_id, t in touches.items()
        ),
    )


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one replayed list recorded: the actions (each naming the list, so the attribution's
    explicit rule counts it) and how many touched products the list did not show."""

    actions: tuple[Action, ...]
    missed: int


def recorded(*, recommendation_id: str, product_ids: Sequence[str], visit: Visit) -> Recorded:
    """The click, cart and purchase a list of ``product_ids`` records in ``visit`` (see the
    module's rule), each at the moment the customer first touched the product."""
    shown = set(product_ids)
    actions: list[Action] = []
    missed = 0
    for t in visit.touches:
        if t.product_id not in shown:
            missed += 1
            continue
        kinds = ["click"]
        if t.carted:
            kinds.append("add_to_cart")
        if t.purchased:
            kinds.append("purchase")
        for kind in kinds:
            actions.append(
                Action(
                    event_id=f"replay:{recommendation_id}:{t.product_id}:{kind}",
                    visitors=(visit.visitor,),
                    product_id=t.product_id,
                    event_type=kind,
                    at=t.first_at,
                    revenue=t.revenue if kind == "purchase" else 0.0,
                    recommendation_id=recommendation_id,
                )
            )
    return Recorded(actions=tuple(actions), missed=missed)


# A/A calibration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitorTotals:
    """One visitor's impressions and, per column (clicks, carts, purchases, revenue, filled),
    their total over the replay."""

    visitor: str
    impressions: float
    values: Mapping[str, float]


def split_sums(
    visitors: Sequence[VisitorTotals], *, salt: str, shares: Sequence[int], column: str
) -> list[stats.Sums]:
    """Per variant (in order), the per-visitor sums of ``column`` when ``salt`` assigns the
    visitors with ``shares`` (the serving path's own assignment)."""
    return _sums(visitors, _assigned(visitors, salt=salt, shares=shares), len(shares), column)


def _assigned(visitors: Sequence[VisitorTotals], *, salt: str, shares: Sequence[int]) -> list[int]:
    return [assign(salt, v.visitor, shares) for v in visitors]


def _sums(
    visitors: Sequence[VisitorTotals], groups: Sequence[int], n: int, column: str
) -> list[stats.Sums]:
    acc = [[0, 0.0, 0.0, 0.0, 0.0, 0.0] for _ in range(n)]
    for v, group in zip(visitors, groups, strict=True):
        a = acc[group]
        x, y = v.impressions, float(v.values.get(column, 0.0))
        a[0] += 1
        a[1] += x
        a[2] += x * x
        a[3] += y
        a[4] += y * y
        a[5] += x * y
    return [stats.Sums(int(a[0]), a[1], a[2], a[3], a[4], a[5]) for a in acc]


def _counts(groups: Sequence[int], n: int) -> list[int]:
    counts = [0] * n
    for group in groups:
        counts[group] += 1
    return counts


@dataclass(frozen=True, slots=True)
class AaCalibration:
    """``runs`` A/A splits of one replay: per metric column, how many the z-test called
    significant at ``alpha``; how many 50/50 splits the SRM check flagged (false alarms), and
    how many deliberately skewed ones it flagged."""

    runs: int
    visitors: int
    alpha: float
    significant: dict[str, int]
    srm_false_alarms: int
    skew: tuple[int, int]
    srm_flagged_when_skewed: int
    p_values: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def rate(self, column: str) -> float:
        return self.significant[column] / self.runs if self.runs else 0.0


def aa_calibration(
    visitors: Sequence[VisitorTotals],
    *,
    columns: Sequence[str],
    runs: int,
    seed: str,
    skew: tuple[int, int] = (45, 55),
) -> AaCalibration:
    """Re-split ``visitors`` ``runs`` times (salt ``"<seed>-<i>"``) into two halves and test
    each column with the experiment statistics (:func:`stats.ratio`, :func:`stats.compare`);
    check each split's visitor counts against 50/50 (:func:`stats.srm`), and those of the same
    salt's ``skew`` assignment against 50/50 too."""
    if runs < 1:
        raise ValueError(f"runs: at least 1, not {runs}")
    significant = dict.fromkeys(columns, 0)
    p_values: dict[str, list[float]] = {c: [] for c in columns}
    false_alarms = flagged = 0
    for i in range(runs):
        salt = f"{seed}-{i}"
        halves = _assigned(visitors, salt=salt, shares=(50, 50))
        for column in columns:
            a, b = _sums(visitors, halves, 2, column)
            comparison = stats.compare(stats.ratio(b), stats.ratio(a))
            if comparison.p_value is not None:
                p_values[column].append(comparison.p_value)
            if comparison.significant:
                significant[column] += 1
        false_alarms += stats.srm(_counts(halves, 2), (50, 50)).flagged
        skewed = _assigned(visitors, salt=salt, shares=skew)
        flagged += stats.srm(_counts(skewed, 2), (50, 50)).flagged
    return AaCalibration(
        runs=runs,
        visitors=len(visitors),
        alpha=stats.ALPHA,
        significant=significant,
        srm_false_alarms=false_alarms,
        skew=skew,
        srm_flagged_when_skewed=flagged,
        p_values=p_values,
    )
