"""Merchandising rules as data plus pure functions over ranked lists (architecture C7).

Each rule acts on product ids the services layer has already resolved from its target (a
category, a brand, a tag, a price range, ...), so nothing here touches the database. There are
two kinds:

- **Score rules** (:class:`Boost`, :class:`Bury`, :class:`Filter`) work on the scored head of
  the fused list, before diversity and the cut to k: they are the engine's ``rules=`` hook
  (each is a callable ``list[RankedItem] -> list[RankedItem]``).
- **Positional rules** (:class:`Pin`, :class:`PromotionSlots`) work on the final list, after
  diversity and the cut: a pinned product must end up at its position whatever diversity did.
  :func:`apply_positional` runs them.

Each rule applies to the lists named in its ``surfaces`` (the kinds of list: ``customer``,
``session``, ``similar``, ``bought_together``, ``trending``), or to every list when that is None;
:meth:`RuleSet.on` keeps those of one list. Rules run in priority order (higher ``priority``
first, then lower ``rule_id``). Every rule that
changes an item appends its id to ``RankedItem.rule_ids`` and adds a sentence to
``RankedItem.rule_reasons`` ("boosted \u00d71.5 by rule “Summer candles”"; a pin's or a
promotion's sentence goes first, as the place is what it explains); the service puts those
sentences ahead of the engine's own reasons. A filter wins over everything: a filtered product
is never pinned or promoted.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import TypeVar

from .types import RankedItem

# The multiplication sign of "boosted \u00d71.5", escaped so linters do not take it for an x.
TIMES = "\u00d7"


def _quoted(name: str) -> str:
    return f"“{name}”"


def _factor(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleBase:
    """What every rule has: identity, priority, an optional validity window and the lists it
    applies to.

    ``starts_at`` / ``ends_at`` are POSIX timestamps; the window is ``[starts_at, ends_at)``.
    ``surfaces`` names the kinds of list the rule applies to (None: every list).
    """

    rule_id: int
    name: str
    priority: int = 0
    starts_at: float | None = None
    ends_at: float | None = None
    surfaces: frozenset[str] | None = None

    def active_at(self, at: float) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )

    def applies_to(self, surface: str) -> bool:
        return self.surfaces is None or surface in self.surfaces

    @property
    def order_key(self) -> tuple[int, int]:
        return (-self.priority, self.rule_id)

    def _mark(
        self, item: RankedItem, reason: str, *, first: bool = False, **changes: object
    ) -> RankedItem:
        """``item`` with this rule's id and reason added (``first``: the reason leads, as a
        position explains an item's place better than a score change does)."""
        reasons = (reason, *item.rule_reasons) if first else (*item.rule_reasons, reason)
        return replace(
            item,
            rule_ids=(*item.rule_ids, self.rule_id),
            rule_reasons=reasons,
            **changes,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Boost(RuleBase):
    """Multiply the score of the matching products by ``factor`` (> 1 lifts them)."""

    product_ids: frozenset[int]
    factor: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise ValueError(f"factor: must be a finite number > 0, got {self.factor!r}")

    @property
    def reason(self) -> str:
        return f"boosted {TIMES}{_factor(self.factor)} by rule {_quoted(self.name)}"

    def __call__(self, items: list[RankedItem]) -> list[RankedItem]:
        return [
            self._mark(item, self.reason, score=item.score * self.factor)
            if item.product_id in self.product_ids
            else item
            for item in items
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bury(Boost):
    """Multiply the score of the matching products by ``factor`` (< 1 sinks them)."""

    @property
    def reason(self) -> str:
        return f"buried {TIMES}{_factor(self.factor)} by rule {_quoted(self.name)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter(RuleBase):
    """Remove the matching products (out of stock, a brand not to show, ...)."""

    product_ids: frozenset[int]

    def __call__(self, items: list[RankedItem]) -> list[RankedItem]:
        return [item for item in items if item.product_id not in self.product_ids]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin(RuleBase):
    """Put ``product_ids`` at ``position`` (1-based), ``position + 1``, ... in that order.

    A pinned product that is not among the candidates is inserted all the same; one whose
    position a higher-priority rule took goes to the next free position.
    """

    product_ids: tuple[int, ...]
    position: int

    def __post_init__(self) -> None:
        if self.position < 1:
            raise ValueError(f"position: must be >= 1, got {self.position!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionSlots(RuleBase):
    """Reserve ``share`` of the positions for ``product_ids`` (marked ``promoted``).

    ``slots(k)`` positions, spread evenly from the top (with 2 slots in 10: positions 1 and 6),
    go to the promoted products: first those already in the list (in list order), then those
    the scored head knows (best score first), then the rest in ``product_ids`` order.
    """

    product_ids: tuple[int, ...]
    share: float
    # ``product_ids`` as a set, for membership tests on every request.
    members: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (0.0 < self.share <= 1.0):
            raise ValueError(f"share: must be > 0 and <= 1, got {self.share!r}")
        object.__setattr__(self, "members", frozenset(self.product_ids))

    def slots(self, k: int) -> int:
        """Round half up, at least one: a promotion is never silently empty."""
        return min(k, max(1, math.floor(self.share * k + 0.5)))

    def positions(self, k: int) -> list[int]:
        n = self.slots(k)
        return [math.floor(i * k / n) + 1 for i in range(n)]

    @property
    def reason(self) -> str:
        return f"promoted by rule {_quoted(self.name)}"


_R = TypeVar("_R", bound=RuleBase)
ScoreRule = Boost | Bury | Filter
PositionalRule = Pin | PromotionSlots
AnyRule = Boost | Bury | Filter | Pin | PromotionSlots


def in_priority_order(rules: Iterable[_R]) -> list[_R]:
    return sorted(rules, key=lambda rule: rule.order_key)


class ScoreTable:
    """Every score rule of a set folded into one lookup by product id.

    Running it is one pass over the head with a dict lookup per item, instead of a pass per
    rule; the result equals running the rules one by one in priority order (the factors
    multiply in that order, the ids and reasons follow it). Building it costs a dict entry per
    matched product, so a serving process builds it once per set of active rules.
    """

    def __init__(self, rules: Iterable[AnyRule]) -> None:
        ordered = in_priority_order(r for r in rules if isinstance(r, Boost | Filter))
        removed: set[int] = set()
        effects: dict[int, list[tuple[float, int, str]]] = {}
        for rule in ordered:
            if isinstance(rule, Filter):
                removed |= rule.product_ids
                continue
            effect = (rule.factor, rule.rule_id, rule.reason)
            for pid in rule.product_ids:
                effects.setdefault(pid, []).append(effect)
        self.removed = frozenset(removed)
        self.effects = {pid: tuple(found) for pid, found in effects.items()}

    def __bool__(self) -> bool:
        return bool(self.removed or self.effects)

    def __call__(self, items: list[RankedItem]) -> list[RankedItem]:
        out = []
        for item in items:
            pid = item.product_id
            if pid in self.removed:
                continue
            found = self.effects.get(pid)
            if found is None:
                out.append(item)
                continue
            score = item.score
            for factor, _, _ in found:
                score *= factor
            out.append(
                replace(
                    item,
                    score=score,
                    rule_ids=(*item.rule_ids, *(rule_id for _, rule_id, _ in found)),
                    rule_reasons=(*item.rule_reasons, *(reason for _, _, reason in found)),
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A set of compiled rules; :meth:`at` keeps those valid at a time, in priority order.

    ``table`` is the score rules' :class:`ScoreTable` when built ahead (:meth:`prepared`, for a
    set served many times); :attr:`score_hook` builds one otherwise.
    """

    rules: tuple[AnyRule, ...] = ()
    table: ScoreTable | None = field(default=None, compare=False, repr=False)

    def prepared(self) -> RuleSet:
        return RuleSet(self.rules, ScoreTable(self.rules))

    @property
    def score_hook(self) -> ScoreTable:
        """All score rules as one engine hook."""
        return self.table if self.table is not None else ScoreTable(self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def at(self, at: float) -> RuleSet:
        return RuleSet(tuple(in_priority_order(r for r in self.rules if r.active_at(at))))

    def on(self, surface: str) -> RuleSet:
        """The rules that apply to the ``surface`` list (itself when all do, so a prepared
        set stays prepared)."""
        kept = tuple(r for r in self.rules if r.applies_to(surface))
        return self if len(kept) == len(self.rules) else RuleSet(kept)

    @property
    def score_rules(self) -> tuple[ScoreRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, Boost | Filter))

    @property
    def positional(self) -> tuple[PositionalRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, Pin | PromotionSlots))

    @property
    def filtered(self) -> frozenset[int]:
        """Every product a filter removes (never pinned or promoted either)."""
        out: set[int] = set()
        for rule in self.rules:
            if isinstance(rule, Filter):
                out |= rule.product_ids
        return frozenset(out)


def apply_score_rules(items: Sequence[RankedItem], rules: Iterable[AnyRule]) -> list[RankedItem]:
    """Run the score rules in priority order, then order by score (stable: ties keep order).

    The engine runs the same rules through its hook and orders by score in its diversity step;
    this is the same thing for a list at hand (tests, previews).
    """
    out = list(items)
    for rule in in_priority_order(r for r in rules if isinstance(r, Boost | Filter)):
        out = rule(out)
    return sorted(out, key=lambda item: -item.score)


class HeadRecorder:
    """A rule that changes nothing and keeps the list it saw.

    Run last in the engine's hook, it holds the scored head (after the score rules, before
    diversity): the candidates beyond the k returned, with their scores and sources, which a
    pinned or promoted product taken from there keeps.
    """

    def __init__(self) -> None:
        self.items: list[RankedItem] = []

    def __call__(self, items: list[RankedItem]) -> list[RankedItem]:
        self.items = list(items)
        return items


def _bare(product_id: int) -> RankedItem:
    """A product no source proposed (a pin or promotion from outside the candidates)."""
    return RankedItem(
        index=-1, product_id=product_id, score=0.0, sources=(), components={}, reasons=()
    )


def apply_positional(
    items: Sequence[RankedItem],
    rules: Iterable[AnyRule],
    *,
    k: int,
    pool: Mapping[int, RankedItem] | None = None,
    blocked: Collection[int] = (),
) -> list[RankedItem]:
    """Apply the pins and promotion slots of ``rules`` to the final list ``items``.

    ``k`` is the length asked for; ``pool`` maps product ids to candidates known beyond
    ``items`` (the scored head; a product taken from there keeps its score and sources);
    ``blocked`` products are never inserted (filtered, excluded for this customer, outside the
    requested category). Items that the inserted ones push past ``k`` drop off the end. A pin
    reason names the position the product actually ends up at.
    """
    if k < 1:
        raise ValueError(f"k: expected an integer >= 1, got {k!r}")
    placement = _Placement(items, k=k, pool=pool or {}, blocked=blocked)
    for rule in in_priority_order(r for r in rules if isinstance(r, Pin | PromotionSlots)):
        if isinstance(rule, Pin):
            placement.pin(rule)
        else:
            placement.promote(rule)
    return placement.assembled()


class _Placement:
    """One run of :func:`apply_positional`: the positions locked so far and by which rule."""

    def __init__(
        self,
        items: Sequence[RankedItem],
        *,
        k: int,
        pool: Mapping[int, RankedItem],
        blocked: Collection[int],
    ) -> None:
        self.items = items
        self.k = k
        self.pool = pool
        self.blocked = blocked
        self.in_list = {item.product_id: item for item in items}
        self.locked: dict[int, RankedItem] = {}  # position (1-based) -> item
        self.pinned_by: dict[int, Pin] = {}  # position -> the pin that put it there
        self.placed: set[int] = set()

    def _free_from(self, position: int) -> int | None:
        while position <= self.k and position in self.locked:
            position += 1
        return position if position <= self.k else None

    def _take(self, product_id: int) -> RankedItem:
        return self.in_list.get(product_id) or self.pool.get(product_id) or _bare(product_id)

    def pin(self, rule: Pin) -> None:
        wanted = rule.position
        for pid in rule.product_ids:
            if pid in self.blocked or pid in self.placed:
                continue
            position = self._free_from(wanted)
            if position is None:
                break
            self.locked[position] = self._take(pid)
            self.pinned_by[position] = rule
            self.placed.add(pid)
            wanted = position + 1

    def promote(self, rule: PromotionSlots) -> None:
        members, pool, in_list = rule.members, self.pool, self.in_list
        present = [item.product_id for item in self.items if item.product_id in members]
        known = sorted(
            (p for p in pool if p in members and p not in in_list),
            key=lambda p: -pool[p].score,
        )
        others = (p for p in rule.product_ids if p not in in_list and p not in pool)
        # Lazy: only as many as there are slots are looked at; ``placed`` grows as it goes.
        queue = (
            p
            for p in chain(present, known, others)
            if p not in self.blocked and p not in self.placed
        )
        for slot in rule.positions(self.k):
            position = self._free_from(slot)
            chosen = next(queue, None) if position is not None else None
            if position is None or chosen is None:
                break
            self.locked[position] = rule._mark(
                self._take(chosen), rule.reason, first=True, promoted=True
            )
            self.placed.add(chosen)

    def assembled(self) -> list[RankedItem]:
        """The list: locked positions, the other items in order around them, then the pins'
        reasons with the positions they ended up at."""
        rest = iter(item for item in self.items if item.product_id not in self.placed)
        out: list[RankedItem] = []
        pins: list[tuple[int, Pin]] = []
        for position in range(1, self.k + 1):
            if position in self.locked:
                if position in self.pinned_by:
                    pins.append((len(out), self.pinned_by[position]))
                out.append(self.locked[position])
                continue
            item = next(rest, None)
            if item is None:
                # The list ran short: later locked items move up rather than leave a hole.
                continue
            out.append(item)
        for index, pin in pins:
            reason = f"pinned at position {index + 1} by rule {_quoted(pin.name)}"
            out[index] = pin._mark(out[index], reason, first=True)
        return out
