"""Merchandising rules: create, edit and delete them (validated per field), and compile them
into the framework-free rule objects of :mod:`recommender.ranking.rules`.

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
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from recommender.caching import Reloading
from recommender.models import MerchandisingRule, RecommendationKind, RuleAction, RuleTarget
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
    product_external_ids_unknown,
    product_ids_matching,
)

logger = logging.getLogger(__name__)

# Fields a rule is created from; ``merchandising_rule_update`` accepts any subset.
RULE_FIELDS = (
    "name",
    "action",
    "target_kind",
    "target_values",
    "price_min",
    "price_max",
    "factor",
    "position",
    "share",
    "priority",
    "surfaces",
    "starts_at",
    "ends_at",
    "is_active",
)
MAX_TARGET_VALUES = 500
MAX_PRIORITY = 1_000_000
# The parameter each action uses; the others are cleared on save.
_ACTION_PARAMETER = {
    RuleAction.PIN: "position",
    RuleAction.BOOST: "factor",
    RuleAction.BURY: "factor",
    RuleAction.PROMOTE: "share",
    RuleAction.FILTER: None,
}
_MAX_AGE_S = 60.0


class RuleInvalid(ValueError):
    """A rule field is missing or wrong; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


# Validation ---------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("must be a number") from exc
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def _values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of strings")
    out = [str(v).strip() for v in value if str(v).strip()]
    return list(dict.fromkeys(out))


def _surfaces(value: Any) -> list[str]:
    """The lists a rule applies to, in the order of ``RecommendationKind`` (None: all)."""
    if value is None:
        return list(RecommendationKind.values)
    chosen = _values(value)
    unknown = [v for v in chosen if v not in RecommendationKind.values]
    if unknown:
        raise ValueError(f"unknown lists {unknown}: choose from {list(RecommendationKind.values)}")
    if not chosen:
        raise ValueError("choose at least one list for the rule to apply to")
    return [v for v in RecommendationKind.values if v in chosen]


def rule_clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check a rule's fields and return them normalised; raises :class:`RuleInvalid`.

    Every problem is reported at once, each under the field it concerns, so a form can show
    the message next to that field.
    """
    errors: dict[str, str] = {}
    out: dict[str, Any] = {field: data.get(field) for field in RULE_FIELDS}

    name = str(out["name"] or "").strip()
    if not name:
        errors["name"] = "give the rule a name"
    elif len(name) > 200:
        errors["name"] = f"at most 200 characters, got {len(name)}"
    out["name"] = name

    action = out["action"]
    if action not in RuleAction.values:
        errors["action"] = f"expected one of {list(RuleAction.values)}, got {action!r}"
    target = out["target_kind"]
    if target not in RuleTarget.values:
        errors["target_kind"] = f"expected one of {list(RuleTarget.values)}, got {target!r}"

    for field, parse in (("factor", _number), ("share", _number)):
        try:
            out[field] = parse(out[field])
        except (TypeError, ValueError) as exc:
            errors[field] = str(exc) if isinstance(exc, ValueError) else "must be a number"
    for field in ("price_min", "price_max"):
        try:
            out[field] = _decimal(out[field])
        except ValueError as exc:
            errors[field] = str(exc)
    position = out["position"]
    if position is None or position == "":
        out["position"] = None
    elif isinstance(position, bool) or not isinstance(position, int | str):
        errors["position"] = "must be a whole number"
    else:
        try:
            out["position"] = int(position)
        except ValueError:
            errors["position"] = "must be a whole number"
    priority = out["priority"]
    if priority is None or priority == "":
        out["priority"] = 0
    else:
        try:
            out["priority"] = int(priority)
            if abs(out["priority"]) > MAX_PRIORITY:
                errors["priority"] = f"must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"
        except (TypeError, ValueError):
            errors["priority"] = "must be a whole number"
    out["is_active"] = True if out["is_active"] is None else bool(out["is_active"])
    try:
        out["target_values"] = _values(out["target_values"])
    except ValueError as exc:
        errors["target_values"] = str(exc)
    try:
        out["surfaces"] = _surfaces(out["surfaces"])
    except ValueError as exc:
        errors["surfaces"] = str(exc)

    # The action's parameter.
    if action == RuleAction.PIN:
        if out["position"] is None and "position" not in errors:
            errors["position"] = "a pin needs a position (1 is the first)"
        elif "position" not in errors and out["position"] < 1:
            errors["position"] = f"must be 1 or more, got {out['position']}"
        if target in RuleTarget.values and target != RuleTarget.PRODUCT:
            errors["target_kind"] = "a pin targets products: choose 'product'"
    elif action == RuleAction.BOOST and "factor" not in errors:
        if out["factor"] is None:
            errors["factor"] = "a boost needs a factor greater than 1 (e.g. 1.5)"
        elif out["factor"] <= 1:
            errors["factor"] = (
                f"must be greater than 1, got {out['factor']:g} (a bury sinks products)"
            )
    elif action == RuleAction.BURY and "factor" not in errors:
        if out["factor"] is None:
            errors["factor"] = "a bury needs a factor between 0 and 1 (e.g. 0.5)"
        elif not 0 < out["factor"] < 1:
            errors["factor"] = f"must be greater than 0 and less than 1, got {out['factor']:g}"
    elif action == RuleAction.PROMOTE and "share" not in errors:
        if out["share"] is None:
            errors["share"] = "a promotion needs the share of positions to reserve (e.g. 0.2)"
        elif not 0 < out["share"] <= 1:
            errors["share"] = f"must be greater than 0 and at most 1, got {out['share']:g}"
    if action in _ACTION_PARAMETER:
        for field in ("factor", "position", "share"):
            if field != _ACTION_PARAMETER[action]:
                out[field] = None
                errors.pop(field, None)

    # The target.
    values = out["target_values"]
    if target == RuleTarget.PRICE_RANGE:
        out["target_values"] = []
        low, high = out["price_min"], out["price_max"]
        if low is None and high is None and "price_min" not in errors:
            errors["price_min"] = "give a minimum price, a maximum price or both"
        if low is not None and low < 0:
            errors["price_min"] = f"must be 0 or more, got {low}"
        if high is not None and high < 0:
            errors["price_max"] = f"must be 0 or more, got {high}"
        elif low is not None and high is not None and high < low:
            errors["price_max"] = f"must be at least the minimum price ({low}), got {high}"
    else:
        out["price_min"] = out["price_max"] = None
        errors.pop("price_min", None)
        errors.pop("price_max", None)
        if target == RuleTarget.OUT_OF_STOCK:
            out["target_values"] = []
        elif target in RuleTarget.values and "target_values" not in errors:
            if not values:
                errors["target_values"] = f"list at least one {target.replace('_', ' ')}"
            elif len(values) > MAX_TARGET_VALUES:
                errors["target_values"] = f"at most {MAX_TARGET_VALUES} values, got {len(values)}"
            elif target == RuleTarget.PRODUCT:
                unknown = product_external_ids_unknown(external_ids=values)
                if unknown:
                    shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
                    errors["target_values"] = f"unknown product ids: {shown}"

    # The window.
    for field in ("starts_at", "ends_at"):
        value = out[field]
        if value is not None and not isinstance(value, datetime):
            errors[field] = "must be a date and time"
        elif value is not None and timezone.is_naive(value):
            out[field] = timezone.make_aware(value)
    starts, ends = out["starts_at"], out["ends_at"]
    if (
        isinstance(starts, datetime)
        and isinstance(ends, datetime)
        and "starts_at" not in errors
        and "ends_at" not in errors
        and ends <= starts
    ):
        errors["ends_at"] = "must be after the start"
    if errors:
        raise RuleInvalid(errors)
    return out


# Writes -------------------------------------------------------------------------------------


def merchandising_rule_create(
    *, data: Mapping[str, Any], created_by: User | None = None
) -> MerchandisingRule:
    """Validate ``data`` (the fields of :data:`RULE_FIELDS`) and store a new rule."""
    fields = rule_clean(data)
    rule = MerchandisingRule.objects.create(**fields, created_by=created_by)
    transaction.on_commit(merchandising_rules_cache_reset)
    merchandising_rules_cache_reset()
    logger.info("Merchandising rule %s created: %s", rule.pk, rule)
    return rule


def merchandising_rule_update(
    *, rule: MerchandisingRule, data: Mapping[str, Any]
) -> MerchandisingRule:
    """Change the fields given in ``data``; the rule is checked as a whole before saving."""
    current = {field: getattr(rule, field) for field in RULE_FIELDS}
    fields = rule_clean({**current, **{k: v for k, v in data.items() if k in RULE_FIELDS}})
    for field, value in fields.items():
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


def rule_compile(rule: MerchandisingRule, *, rule_id: int | None = None) -> AnyRule:
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


def rules_compile(*, rules: Iterable[MerchandisingRule], at: datetime | None = None) -> RuleSet:
    """Compile ``rules`` (saved or not, e.g. a preview's) into a :class:`RuleSet`.

    With ``at``, only the rules valid at that time are kept (and put in priority order); an
    unsaved rule gets a negative id, so its reasons cannot be mistaken for a saved rule's.
    """
    compiled = [
        rule_compile(rule, rule_id=None if rule.pk else -(i + 1)) for i, rule in enumerate(rules)
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
        rules_compile(rules=merchandising_rules_enabled(at=timezone.now()))
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
