"""Merchandising rules: create, edit and delete them (validated by ``merchandising_validation``),
compile them into the framework-free rule objects of :mod:`recommender.ranking.rules`, and keep
the compiled set of the serving path.

Compiling resolves each rule's target (a category, brand, tag, price range, ...) to product ids
with one query per rule. The recommendations endpoint is latency-critical, so the serving path
(:func:`merchandising_rules_serving`) keeps the compiled set per process and only asks the
database, at most every ``RECSITE_RULES_REFRESH_SECONDS`` (default 5), whether any rule changed
(one small aggregate); a change recompiles at once, and the set is also recompiled every
``_MAX_AGE_S`` seconds so that products that join or leave a target (a new product of a boosted
brand, an item that went out of stock) are picked up. Writes through this module reset this
process's cache immediately. Time windows are checked per request against the wall clock.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from recommender.caching import Reloading
from recommender.models import MerchandisingRule, RecommendationKind, RuleAction
from recommender.ranking.rules import (
    AnyRule,
    Boost,
    Bury,
    Filter,
    Pin,
    PromotionSlots,
    RuleSet,
)
from recommender.selectors.merchandising import (
    merchandising_rules_enabled,
    merchandising_rules_version,
    product_ids_matching,
)

from .merchandising_validation import merchandising_rule_validate

logger = logging.getLogger(__name__)

_MAX_AGE_S = 60.0


# Writes -------------------------------------------------------------------------------------


def merchandising_rule_create(
    *, data: Mapping[str, Any], created_by: User | None = None
) -> MerchandisingRule:
    """Validate ``data`` (the fields of :data:`RULE_FIELDS`) and store a new rule."""
    fields = merchandising_rule_validate(data=data)
    rule = MerchandisingRule.objects.create(**fields.as_dict(), created_by=created_by)
    transaction.on_commit(merchandising_rules_cache_reset)
    merchandising_rules_cache_reset()
    logger.info("Merchandising rule %s created: %s", rule.pk, rule)
    return rule


def merchandising_rule_update(
    *, rule: MerchandisingRule, data: Mapping[str, Any]
) -> MerchandisingRule:
    """Change the fields given in ``data``; the rule is checked as a whole before saving."""
    fields = merchandising_rule_validate(data=data, rule=rule)
    for field, value in fields.as_dict().items():
        setattr(rule, field, value)
    rule.save()
    transaction.on_commit(merchandising_rules_cache_reset)
    merchandising_rules_cache_reset()
    logger.info("Merchandising rule %s updated: %s", rule.pk, rule)
    return rule


def merchandising_rule_delete(*, rule: MerchandisingRule) -> None:
    pk = rule.pk
    rule.delete()
    transaction.on_commit(merchandising_rules_cache_reset)
    merchandising_rules_cache_reset()
    logger.info("Merchandising rule %s deleted", pk)


# Compiling ----------------------------------------------------------------------------------


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _surfaces_compiled(surfaces: list[str] | None) -> frozenset[str] | None:
    """None (every list) for a rule on every list, so the common case costs no test."""
    if surfaces is None or set(surfaces) >= set(RecommendationKind.values):
        return None
    return frozenset(surfaces)


def merchandising_rule_compile(rule: MerchandisingRule, *, rule_id: int | None = None) -> AnyRule:
    """The ranking object of one rule (saved or not: a preview passes ``rule_id``)."""
    ids = product_ids_matching(
        target_kind=rule.target_kind,
        values=list(rule.target_values or []),
        price_min=rule.price_min,
        price_max=rule.price_max,
    )
    common: dict[str, Any] = {
        "rule_id": rule_id if rule_id is not None else int(rule.pk or 0),
        "name": rule.name,
        "priority": int(rule.priority),
        "starts_at": _timestamp(rule.starts_at),
        "ends_at": _timestamp(rule.ends_at),
        "surfaces": _surfaces_compiled(rule.surfaces),
    }
    if rule.action == RuleAction.BOOST:
        return Boost(**common, product_ids=frozenset(ids), factor=float(rule.factor or 1.0))
    if rule.action == RuleAction.BURY:
        return Bury(**common, product_ids=frozenset(ids), factor=float(rule.factor or 1.0))
    if rule.action == RuleAction.FILTER:
        return Filter(**common, product_ids=frozenset(ids))
    if rule.action == RuleAction.PIN:
        return Pin(**common, product_ids=tuple(ids), position=int(rule.position or 1))
    if rule.action == RuleAction.PROMOTE:
        return PromotionSlots(**common, product_ids=tuple(ids), share=float(rule.share or 1.0))
    raise ValueError(f"action: unknown action {rule.action!r}")


def merchandising_rules_compile(
    *, rules: Iterable[MerchandisingRule], at: datetime | None = None
) -> RuleSet:
    """Compile ``rules`` (saved or not, e.g. a preview's) into a :class:`RuleSet`.

    With ``at``, only the rules valid at that time are kept (and put in priority order); an
    unsaved rule gets a negative id, so its reasons cannot be mistaken for a saved rule's.
    """
    compiled = [
        merchandising_rule_compile(rule, rule_id=None if rule.pk else -(i + 1))
        for i, rule in enumerate(rules)
    ]
    ruleset = RuleSet(tuple(compiled))
    return ruleset.at(at.timestamp()) if at is not None else ruleset


@dataclass(frozen=True, slots=True)
class _Compiled:
    version: tuple[int, datetime | None]
    rules: RuleSet
    compiled_at: float
    # The rules valid at a time, by their ids, prepared once (see RuleSet.prepared): the set
    # changes only when a window opens or closes.
    views: dict[tuple[int, ...], RuleSet] = dataclasses.field(default_factory=dict)
    # Per list kind, the last answer and the span of time it holds for (between two window
    # boundaries), so most requests pay a lookup and two comparisons.
    last: dict[str | None, tuple[float, float, RuleSet]] = dataclasses.field(default_factory=dict)

    def at(self, when: float, surface: str | None = None) -> RuleSet:
        last = self.last.get(surface)
        if last is not None and last[0] <= when < last[1]:
            return last[2]
        view = self.rules.at(when)
        if surface is not None:
            view = view.on(surface)
        key = tuple(rule.rule_id for rule in view.rules)
        prepared = self.views.get(key)
        if prepared is None:
            prepared = self.views[key] = view.prepared()
        bounds = [
            t for rule in self.rules.rules for t in (rule.starts_at, rule.ends_at) if t is not None
        ]
        since = max((t for t in bounds if t <= when), default=-math.inf)
        until = min((t for t in bounds if t > when), default=math.inf)
        self.last[surface] = (since, until, prepared)
        return prepared


# The compiled rules of this process (one value), checked every RECSITE_RULES_REFRESH_SECONDS.
_compiled: Reloading[None, _Compiled] = Reloading(
    lambda: float(settings.RECSITE_RULES_REFRESH_SECONDS), max_entries=1
)


def merchandising_rules_serving(
    *, at: datetime | None = None, surface: str | None = None
) -> RuleSet:
    """The rules valid at ``at`` (default: now), in priority order, for the serving path;
    with ``surface`` (a ``RecommendationKind``), only those that apply to that kind of list.

    Costs nothing on most requests (a cached set filtered by time), one aggregate query every
    few seconds, and a compile (a query per rule) only after a change or once a minute.
    """
    when = (at or timezone.now()).timestamp()
    current = _compiled.get(None, _rules_recompiled)
    assert current is not None  # _rules_recompiled always gives a set (maybe empty).
    return current.at(when, surface)


def _rules_recompiled(current: _Compiled | None) -> _Compiled:
    """``current`` while the saved rules are unchanged and it is under a minute old, else the
    saved rules compiled anew."""
    now = time.monotonic()
    version = merchandising_rules_version()
    if (
        current is not None
        and current.version == version
        and now - current.compiled_at <= _MAX_AGE_S
    ):
        return current
    started = time.perf_counter()
    rules = (
        merchandising_rules_compile(rules=merchandising_rules_enabled(at=timezone.now()))
        if version[0]
        else RuleSet()
    )
    if version[0]:
        logger.info(
            "Compiled %d merchandising rules in %.1f ms",
            len(rules),
            (time.perf_counter() - started) * 1000,
        )
    return _Compiled(version=version, rules=rules, compiled_at=now)


def merchandising_rules_cache_reset() -> None:
    """Forget the compiled rules of this process (after a write; tests)."""
    _compiled.forget()
