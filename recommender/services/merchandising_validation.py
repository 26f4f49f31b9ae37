"""Merchandising rule validation: the one typed check every way of writing a rule goes through
(the API's create and change, the dashboard's form and its preview), via
:func:`merchandising_rule_validate`.

The interfaces check types and ranges only; what a rule means (a boost above 1, a pin on
products that exist, an end after the start) is checked here, and every problem is reported at
once under the field it concerns (:class:`MerchandisingRuleInvalid`), so the API answers 422
naming each field and the form shows each message next to its field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from recommender.models import MerchandisingRule, RecommendationKind, RuleAction, RuleTarget
from recommender.selectors.merchandising import product_external_ids_unknown

# Fields a rule is made of; a change may give any subset.
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
MAX_NAME_LENGTH = 200
MAX_TARGET_VALUES = 500
MAX_PRIORITY = 1_000_000
# The parameter each action uses; the others are cleared.
_ACTION_PARAMETER = {
    RuleAction.PIN: "position",
    RuleAction.BOOST: "factor",
    RuleAction.BURY: "factor",
    RuleAction.PROMOTE: "share",
    RuleAction.FILTER: None,
}
# Per action with a bounded parameter: (parameter, message when missing, test, message when the
# test fails, given the value).
_BOUNDS: dict[str, tuple[str, str, Callable[[Any], bool], Callable[[Any], str]]] = {
    RuleAction.PIN: (
        "position",
        "a pin needs a position (1 is the first)",
        lambda v: v >= 1,
        lambda v: f"must be 1 or more, got {v}",
    ),
    RuleAction.BOOST: (
        "factor",
        "a boost needs a factor greater than 1 (e.g. 1.5)",
        lambda v: v > 1,
        lambda v: f"must be greater than 1, got {v:g} (a bury sinks products)",
    ),
    RuleAction.BURY: (
        "factor",
        "a bury needs a factor between 0 and 1 (e.g. 0.5)",
        lambda v: 0 < v < 1,
        lambda v: f"must be greater than 0 and less than 1, got {v:g}",
    ),
    RuleAction.PROMOTE: (
        "share",
        "a promotion needs the share of positions to reserve (e.g. 0.2)",
        lambda v: 0 < v <= 1,
        lambda v: f"must be greater than 0 and at most 1, got {v:g}",
    ),
}


class MerchandisingRuleInvalid(ValueError):
    """A rule field is missing or wrong; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


@dataclass(frozen=True, slots=True)
class MerchandisingRuleFields:
    """A rule's fields as checked and normalised: what is saved."""

    name: str
    action: str
    target_kind: str
    target_values: list[str]
    price_min: Decimal | None
    price_max: Decimal | None
    factor: float | None
    position: int | None
    share: float | None
    priority: int
    surfaces: list[str]
    starts_at: datetime | None
    ends_at: datetime | None
    is_active: bool

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def merchandising_rule_validate(
    *, data: Mapping[str, object], rule: MerchandisingRule | None = None
) -> MerchandisingRuleFields:
    """The rule ``data`` describes, checked as a whole and normalised: a new rule, or with
    ``rule``, that rule with the fields ``data`` gives changed (the others as saved).

    Raises :class:`MerchandisingRuleInvalid` naming every bad field. Reads the catalogue only
    to check that a pin or product rule names products that exist.
    """
    if rule is not None:
        current = {field: getattr(rule, field) for field in RULE_FIELDS}
        data = {**current, **{k: v for k, v in data.items() if k in RULE_FIELDS}}
    checker = _Checker({field: data.get(field) for field in RULE_FIELDS})
    checker.parse_fields()
    checker.check_parameter()
    checker.check_target()
    checker.check_window()
    if checker.errors:
        raise MerchandisingRuleInvalid(checker.errors)
    return MerchandisingRuleFields(**checker.out)


class _Checker:
    """One validation: the values as they become normalised (``out``) and the errors by field."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.out = raw
        self.errors: dict[str, str] = {}

    def _parse(self, field: str, parse: Callable[[Any], Any]) -> None:
        try:
            self.out[field] = parse(self.out[field])
        except (TypeError, ValueError) as exc:
            self.errors[field] = str(exc) if isinstance(exc, ValueError) else "must be a number"

    def parse_fields(self) -> None:
        """Each field on its own: types, choices and plain ranges."""
        self._parse("name", _name)
        for field, choices in (("action", RuleAction.values), ("target_kind", RuleTarget.values)):
            if self.out[field] not in choices:
                self.errors[field] = f"expected one of {list(choices)}, got {self.out[field]!r}"
        for field in ("factor", "share"):
            self._parse(field, _number)
        for field in ("price_min", "price_max"):
            self._parse(field, _decimal)
        self._parse("position", _position)
        self._parse("priority", _priority)
        self.out["is_active"] = (
            True if self.out["is_active"] is None else bool(self.out["is_active"])
        )
        self._parse("target_values", _values)
        self._parse("surfaces", _surfaces)

    def check_parameter(self) -> None:
        """The action's parameter is given and in its range; the other parameters are cleared."""
        action = self.out["action"]
        bounds = _BOUNDS.get(action)
        if bounds is not None and bounds[0] not in self.errors:
            field, missing, ok, wrong = bounds
            value = self.out[field]
            if value is None:
                self.errors[field] = missing
            elif not ok(value):
                self.errors[field] = wrong(value)
        target = self.out["target_kind"]
        if (
            action == RuleAction.PIN
            and target in RuleTarget.values
            and target != RuleTarget.PRODUCT
        ):
            self.errors["target_kind"] = "a pin targets products: choose 'product'"
        if action in _ACTION_PARAMETER:
            for field in ("factor", "position", "share"):
                if field != _ACTION_PARAMETER[action]:
                    self.out[field] = None
                    self.errors.pop(field, None)

    def check_target(self) -> None:
        """The target's values (or price range) as the target kind needs them."""
        target = self.out["target_kind"]
        if target == RuleTarget.PRICE_RANGE:
            self.out["target_values"] = []
            self._check_price_range()
            return
        self.out["price_min"] = self.out["price_max"] = None
        self.errors.pop("price_min", None)
        self.errors.pop("price_max", None)
        if target == RuleTarget.OUT_OF_STOCK:
            self.out["target_values"] = []
        elif target in RuleTarget.values and "target_values" not in self.errors:
            problem = _target_values_problem(target, self.out["target_values"])
            if problem:
                self.errors["target_values"] = problem

    def _check_price_range(self) -> None:
        low, high = self.out["price_min"], self.out["price_max"]
        if low is None and high is None and "price_min" not in self.errors:
            self.errors["price_min"] = "give a minimum price, a maximum price or both"
        if low is not None and low < 0:
            self.errors["price_min"] = f"must be 0 or more, got {low}"
        if high is not None and high < 0:
            self.errors["price_max"] = f"must be 0 or more, got {high}"
        elif low is not None and high is not None and high < low:
            self.errors["price_max"] = f"must be at least the minimum price ({low}), got {high}"

    def check_window(self) -> None:
        """Start and end are times (naive ones in the current time zone), the end after the
        start."""
        for field in ("starts_at", "ends_at"):
            value = self.out[field]
            if value is not None and not isinstance(value, datetime):
                self.errors[field] = "must be a date and time"
            elif value is not None and timezone.is_naive(value):
                self.out[field] = timezone.make_aware(value)
        starts, ends = self.out["starts_at"], self.out["ends_at"]
        if (
            isinstance(starts, datetime)
            and isinstance(ends, datetime)
            and "starts_at" not in self.errors
            and "ends_at" not in self.errors
            and ends <= starts
        ):
            self.errors["ends_at"] = "must be after the start"


def _target_values_problem(target: str, values: list[str]) -> str | None:
    if not values:
        return f"list at least one {target.replace('_', ' ')}"
    if len(values) > MAX_TARGET_VALUES:
        return f"at most {MAX_TARGET_VALUES} values, got {len(values)}"
    if target == RuleTarget.PRODUCT:
        unknown = product_external_ids_unknown(external_ids=values)
        if unknown:
            shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
            return f"unknown product ids: {shown}"
    return None


def _name(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise ValueError("give the rule a name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    return name


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


def _position(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a whole number")
    try:
        return int(value)
    except ValueError:
        raise ValueError("must be a whole number") from None


def _priority(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        priority = int(value)
    except (TypeError, ValueError):
        raise ValueError("must be a whole number") from None
    if abs(priority) > MAX_PRIORITY:
        raise ValueError(f"must be between -{MAX_PRIORITY} and {MAX_PRIORITY}")
    return priority


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
