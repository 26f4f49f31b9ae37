"""Parsing and validation of incoming products, customers and events. Framework-free.

One parser serves every way data comes in (CSV and JSONL files, the batch API), so a row is
accepted or refused for the same reason, with the same message, whatever the door. A parser
takes a mapping of raw values (strings from CSV, native JSON values from the API) and returns a
typed record, or raises :class:`RowError` listing every problem of the row by field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from recommender.ingestion import values

MAX_ID_LENGTH = 128
MAX_EVENT_ID_LENGTH = 191
MAX_TITLE_LENGTH = 500
MAX_NAME_LENGTH = 255
MAX_SEARCH_QUERY_LENGTH = 500
# Clock skew tolerated on client timestamps; anything later is refused as "in the future".
FUTURE_TOLERANCE = timedelta(days=1)
TAG_SEPARATOR = "|"
# The largest money amount the columns hold (12 digits, 2 of them decimals).
MAX_MONEY = Decimal("9999999999.99")
_MONEY = Decimal("0.01")
_MONEY_LIMIT = Decimal("1e10")
# A UUID as the OpenAPI document states it (format uuid): hyphenated, 36 characters.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Marks a value already reported as refused.
_REFUSED: Any = object()

PRODUCT_FIELDS = (
    "product_id", "title", "description", "category", "brand", "price", "tags", "attributes",
    "is_active",
)  # fmt: skip
CUSTOMER_FIELDS = ("customer_id", "attributes")
EVENT_FIELDS = (
    "event_id", "customer_id", "product_id", "event_type", "timestamp", "quantity", "value",
    "session_id", "search_query", "recommendation_id",
)  # fmt: skip
REQUIRED_PRODUCT_COLUMNS = ("product_id", "title")
REQUIRED_CUSTOMER_COLUMNS = ("customer_id",)
REQUIRED_EVENT_COLUMNS = ("customer_id", "event_type", "timestamp")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of a row. ``rule`` marks a value of the documented type and shape refused by
    a rule the API schema cannot state (a timestamp in the future, an unknown product, a
    duplicate id): the API answers those with 422, every other problem with 400."""

    field: str
    message: str
    rule: bool = False


class RowError(ValueError):
    """A row that cannot be accepted, with one entry per faulty field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(slots=True)
class ProductRecord:
    external_id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: Decimal | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True


@dataclass(slots=True)
class CustomerRecord:
    external_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EventRecord:
    event_id: str
    customer_id: str
    product_id: str | None
    event_type: str
    occurred_at: datetime
    quantity: int = 1
    value: Decimal | None = None
    session_id: str = ""
    search_query: str = ""
    # The served list the event came from (a UUID in its canonical form), or "" (none sent).
    recommendation_id: str = ""
    # The row as the bulk writer sends it, less the customer key, when a bulk import prepared
    # it ahead (in its reader thread); not part of the event's value.
    copy_tail: str = field(default="", compare=False, repr=False)


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "integer", float: "number"}


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return _JSON_TYPES.get(type(value), type(value).__name__)


class _Row:
    """Collects field errors while values are read, so one pass reports all of them.

    ``typed`` rows come from JSON (the batch API, JSON Lines files): every value must have its
    documented JSON type (a string title, a boolean ``is_active``, a number price), and null is
    accepted only where documented (``price``, ``value``). Other rows (CSV files, the Online
    Retail converter) hold text that is converted. Either way text is checked by
    :func:`values.text_problem` and merchant ids by :func:`values.id_problem`.
    """

    def __init__(
        self, raw: Mapping[str, Any], *, allowed: Collection[str] | None, typed: bool
    ) -> None:
        self.raw = raw
        self.typed = typed
        self.errors: list[FieldError] = []
        if allowed is not None:
            for key in raw:
                if key not in allowed:
                    self.fail(str(key), "unknown field")

    def fail(self, name: str, message: str, *, rule: bool = False) -> None:
        self.errors.append(FieldError(name, message, rule))

    def _get(self, name: str, expected: str, *, nullable: bool = False) -> Any:
        """The value; ``None`` when absent, an empty CSV cell or an accepted null, and
        ``_REFUSED`` (already reported) for a null a typed row may not give."""
        value = self.raw.get(name)
        if value is None:
            if self.typed and not nullable and name in self.raw:
                self.fail(name, f"expected {expected}, got null")
                return _REFUSED
            return None
        if isinstance(value, str) and not self.typed:
            value = value.strip()  # Surrounding spaces of a CSV cell are not data.
            return value or None
        return value

    def text(
        self, name: str, *, max_length: int, required: bool = False, merchant_id: bool = False
    ) -> str:
        value = self._get(name, "a string")
        if value is _REFUSED:
            return ""
        if value is None:
            if required:
                self.fail(name, "this field is required")
            return ""
        if not isinstance(value, str):
            if self.typed or isinstance(value, bool) or not isinstance(value, int):
                self.fail(name, f"expected a string, got {json_type(value)}")
                return ""
            value = str(value)
        # The raw length: the documented maxLength counts the characters sent.
        if len(value) > max_length:
            self.fail(name, f"longer than {max_length} characters ({len(value)})")
            return ""
        # isprintable() first: a C-level scan that clears almost every value (hot path).
        if not value.isprintable():
            problem = values.text_problem(value)
            if problem is not None:
                self.fail(name, problem)
                return ""
        text = value.strip()
        if not text:
            if required:
                self.fail(name, "this field is required")
            return ""
        # Checked as sent: an id is never trimmed into another one. Most ids are alphanumeric.
        if merchant_id and not (value.isascii() and value.isalnum()):
            problem = values.id_problem(value)
            if problem is not None:
                self.fail(name, problem)
                return ""
        return text

    def uuid(self, name: str) -> str:
        """A UUID in its canonical hyphenated form (lower case), or "" when absent or null."""
        value = self._get(name, "a string", nullable=True)
        if value is None or value is _REFUSED:
            return ""
        if not isinstance(value, str):
            self.fail(name, f"expected a string, got {json_type(value)}")
            return ""
        if not _UUID.fullmatch(value):
            self.fail(name, "expected a UUID such as 123e4567-e89b-42d3-a456-426614174000")
            return ""
        return value.lower()

    def decimal(self, name: str) -> Decimal | None:
        value = self._get(name, "a number", nullable=True)
        if value is None or value is _REFUSED:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(name, f"expected a number, got {json_type(value)}")
            return None
        if self.typed and isinstance(value, str):
            self.fail(name, f"expected a number, got a string ({value!r})")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(name, f"not a number: {value!r}")
            return None
        if not number.is_finite() or number < 0:
            self.fail(name, f"must be a finite number >= 0, got {value!r}")
            return None
        # Compared again after rounding to two decimals: 9999999999.995 rounds past the column.
        if number >= _MONEY_LIMIT or number.quantize(_MONEY) > MAX_MONEY:
            self.fail(name, f"too large: {value!r} (at most {MAX_MONEY})")
            return None
        return number.quantize(_MONEY)  # Money has two decimals.

    def positive_int(self, name: str, *, default: int) -> int:
        value = self._get(name, "an integer")
        if value is None or value is _REFUSED:
            return default
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            if self.typed and not isinstance(value, int | float):
                raise ValueError
            number = int(value) if not isinstance(value, str) else int(Decimal(value))
            if isinstance(value, str) and Decimal(value) != number:
                raise ValueError
        except (ValueError, ArithmeticError, TypeError):
            self.fail(name, f"expected a whole number, got {value!r}")
            return default
        if number < 1 or number > 2_147_483_647:
            self.fail(name, f"must be between 1 and 2147483647, got {number}")
            return default
        return number

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._get(name, "true or false")
        if value is None or value is _REFUSED:
            return default
        if isinstance(value, bool):
            return value
        if not self.typed:
            lowered = str(value).lower()
            if lowered in ("1", "true", "yes", "y", "t"):
                return True
            if lowered in ("0", "false", "no", "n", "f"):
                return False
        self.fail(name, f"expected true or false, got {value!r}")
        return default

    def tags(self, name: str) -> list[str]:
        value = self._get(name, "a list of strings")
        if value is None or value is _REFUSED:
            return []
        if isinstance(value, str) and not self.typed:
            items = value.split(TAG_SEPARATOR)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = value
        else:
            expected = (
                "a list of strings"
                if self.typed
                else (f"a list of strings or a '{TAG_SEPARATOR}'-joined string")
            )
            self.fail(name, f"expected {expected}")
            return []
        if any(len(t) > MAX_NAME_LENGTH for t in items):
            self.fail(name, f"a tag is longer than {MAX_NAME_LENGTH} characters")
            return []
        for tag in items:
            problem = values.text_problem(tag)
            if problem is not None:
                self.fail(name, f"a tag {problem}")
                return []
        return list(dict.fromkeys(t.strip() for t in items if t.strip()))

    def json_object(self, name: str) -> dict[str, Any]:
        value = self._get(name, "a JSON object")
        if value is None or value is _REFUSED:
            return {}
        if isinstance(value, str) and not self.typed:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                self.fail(name, f"not valid JSON: {exc.msg}")
                return {}
        if not isinstance(value, dict):
            self.fail(name, f"expected a JSON object, got {json_type(value)}")
            return {}
        # Free-form, so its text is not in the API schema: a refusal there is a rule (422).
        problems = list(values.json_text_problems(value, name))
        for path, problem in problems:
            self.fail(path, problem, rule=True)
        return {} if problems else value

    def timestamp(self, name: str, *, now: datetime) -> datetime | None:
        value = self._get(name, "a string")
        if value is _REFUSED:
            return None
        if value is None:
            self.fail(name, "this field is required")
            return None
        if not isinstance(value, str):
            self.fail(name, f"expected an ISO 8601 string, got {json_type(value)}")
            return None
        try:
            moment = values.parse_timestamp(value)
        except values.TimestampError as exc:
            self.fail(name, str(exc), rule=exc.out_of_range)
            return None
        if moment > now + FUTURE_TOLERANCE:
            self.fail(name, f"in the future: {value!r}", rule=True)
            return None
        return moment

    def done(self) -> None:
        if self.errors:
            raise RowError(self.errors)


def parse_product(
    raw: Mapping[str, Any],
    *,
    allowed: Collection[str] | None = PRODUCT_FIELDS,
    typed: bool = True,
) -> ProductRecord:
    """Parse one product. With ``allowed=None``, unknown keys are left to the caller."""
    row = _Row(raw, allowed=allowed, typed=typed)
    record = ProductRecord(
        external_id=row.text(
            "product_id", max_length=MAX_ID_LENGTH, required=True, merchant_id=True
        ),
        title=row.text("title", max_length=MAX_TITLE_LENGTH, required=True),
        description=row.text("description", max_length=100_000),
        category=row.text("category", max_length=MAX_NAME_LENGTH),
        brand=row.text("brand", max_length=MAX_NAME_LENGTH),
        price=row.decimal("price"),
        tags=row.tags("tags"),
        attributes=row.json_object("attributes"),
        is_active=row.boolean("is_active", default=True),
    )
    row.done()
    return record


@dataclass(frozen=True, slots=True)
class AttributePolicy:
    """Which free-form customer attributes are kept: ``names`` (None: any name) and whether
    values that look like contact details (an e-mail address, a phone number) are accepted.
    The services build it from ``RECSITE_CUSTOMER_ATTRIBUTES`` and
    ``RECSITE_CUSTOMER_CONTACT_ATTRIBUTES`` (docs/privacy.md)."""

    names: frozenset[str] | None = None
    allow_contact: bool = False


_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[A-Za-z]{2,}")
# A phone number: digits in groups, with a leading +, 0 or ( or separators between the groups;
# not a date (2024-05-01, 01/05/2024) nor a bare number (an order or loyalty number).
_PHONE = re.compile(r"[+(]?\d[\d\s().\-/]{5,22}\d\)?")
_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d[\d\s().\-]{5,20}\d")  # +44 20 7946 0958, anywhere.
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


def _phone_like(text: str) -> bool:
    text = text.strip()
    if _INTERNATIONAL.search(text):
        return True
    if not _PHONE.fullmatch(text) or _DATE.fullmatch(text):
        return False
    if not 7 <= sum(c.isdigit() for c in text) <= 15:
        return False
    return text[0] in "+(0" or any(c in text for c in " -.()/")


def contact_problem(text: str) -> str | None:
    """Why ``text`` looks like contact details (an e-mail address or an international phone
    number anywhere in it, or another phone number as the whole value), or None."""
    if _EMAIL.search(text):
        return "looks like an e-mail address"
    if _phone_like(text):
        return "looks like a phone number"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def attribute_problems(
    attributes: Mapping[str, Any], policy: AttributePolicy
) -> Iterator[tuple[str, str]]:
    """``(path, problem)`` for each attribute the policy refuses."""
    for key, value in attributes.items():
        path = f"attributes.{key}"
        if policy.names is not None and key not in policy.names:
            allowed = ", ".join(sorted(policy.names)) or "none"
            yield path, f"not an allowed attribute (RECSITE_CUSTOMER_ATTRIBUTES: {allowed})"
            continue
        if policy.allow_contact:
            continue
        for where, text in _strings(value, path):
            problem = contact_problem(text)
            if problem is not None:
                yield (
                    where,
                    (
                        f"{problem}; contact details are not stored "
                        "(RECSITE_CUSTOMER_CONTACT_ATTRIBUTES=1 allows them)"
                    ),
                )


def parse_customer(
    raw: Mapping[str, Any],
    *,
    allowed: Collection[str] | None = CUSTOMER_FIELDS,
    typed: bool = True,
    policy: AttributePolicy | None = None,
) -> CustomerRecord:
    """A customer record. ``policy``: the attribute allow-list (default: any name, no contact
    details); a refused attribute is a rule (422 in the API), named by its path."""
    row = _Row(raw, allowed=allowed, typed=typed)
    record = CustomerRecord(
        external_id=row.text(
            "customer_id", max_length=MAX_ID_LENGTH, required=True, merchant_id=True
        ),
        attributes=row.json_object("attributes"),
    )
    for path, problem in attribute_problems(record.attributes, policy or AttributePolicy()):
        row.fail(path, problem, rule=True)
    row.done()
    return record


def derived_event_id(record: EventRecord) -> str:
    """A stable key for an event sent without one, so that replaying it is still a no-op."""
    parts = (
        record.customer_id,
        record.product_id or "",
        record.event_type,
        record.occurred_at.isoformat(),
        str(record.quantity),
        record.session_id,
        record.search_query,
    )
    return "auto-" + hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def parse_event(
    raw: Mapping[str, Any],
    *,
    event_types: Collection[str],
    now: datetime,
    allowed: Collection[str] | None = EVENT_FIELDS,
    typed: bool = True,
) -> EventRecord:
    """Parse one event. ``product_id`` is required except for searches, which need a query."""
    row = _Row(raw, allowed=allowed, typed=typed)
    event_type = row.text("event_type", max_length=32, required=True)
    if event_type and event_type not in event_types:
        row.fail(
            "event_type", f"unknown type {event_type!r}; expected one of {sorted(event_types)}"
        )
    is_search = event_type == "search"
    # Which of the two an event needs depends on its type: a rule the schema cannot state.
    reported = len(row.errors)
    product_id = row.text("product_id", max_length=MAX_ID_LENGTH, merchant_id=True)
    if not is_search and not product_id and len(row.errors) == reported:
        row.fail("product_id", "this field is required", rule=True)
    reported = len(row.errors)
    search_query = row.text("search_query", max_length=MAX_SEARCH_QUERY_LENGTH)
    if is_search and not search_query and len(row.errors) == reported:
        row.fail("search_query", "this field is required", rule=True)
    record = EventRecord(
        event_id=row.text("event_id", max_length=MAX_EVENT_ID_LENGTH),
        customer_id=row.text(
            "customer_id", max_length=MAX_ID_LENGTH, required=True, merchant_id=True
        ),
        product_id=product_id or None,
        event_type=event_type,
        occurred_at=row.timestamp("timestamp", now=now) or now,
        quantity=row.positive_int("quantity", default=1),
        value=row.decimal("value"),
        session_id=row.text("session_id", max_length=MAX_ID_LENGTH),
        search_query=search_query,
        recommendation_id=row.uuid("recommendation_id"),
    )
    row.done()
    if not record.event_id:
        record.event_id = derived_event_id(record)
    return record


Parser = Callable[[Mapping[str, Any]], Any]


_MAX_QUANTITY = 2_147_483_647
_ID = re.compile(values.ID_PATTERN)


class EventRowParser:
    """:func:`parse_event` for CSV records given as lists of strings, about four times faster.

    Bulk imports spend most of their Python time parsing. This parser takes the common shape of
    a row (clean values: no surrounding spaces, a known non-search type, a whole-number
    quantity, an ISO 8601 timestamp) straight to an :class:`EventRecord`, and hands any other
    row to :func:`parse_event`, so a row is accepted or refused with exactly the same record or
    the same messages as on every other path (tests/recommender/ingestion/test_fast_events.py
    compares the two on tricky rows). Columns that are not event fields are ignored, as with
    ``allowed=None``.
    """

    def __init__(
        self, columns: tuple[str, ...], *, event_types: Collection[str], now: datetime
    ) -> None:
        self.columns = columns
        self.event_types = frozenset(event_types)
        self.now = now
        self.latest = now + FUTURE_TOLERANCE
        index = {name: i for i, name in enumerate(columns) if name in EVENT_FIELDS}
        self._type = index.get("event_type")
        self._customer = index.get("customer_id")
        self._timestamp = index.get("timestamp")
        self._event_id = index.get("event_id")
        self._product = index.get("product_id")
        self._quantity = index.get("quantity")
        self._value = index.get("value")
        self._session = index.get("session_id")
        self._query = index.get("search_query")
        self._recommendation = index.get("recommendation_id")
        self._fast = None not in (self._type, self._customer, self._timestamp, self._product)

    def slow(self, values: list[str]) -> EventRecord:
        raw = {name: value for name, value in zip(self.columns, values, strict=True) if name}
        return parse_event(
            raw, event_types=self.event_types, now=self.now, allowed=None, typed=False
        )

    def __call__(self, values: list[str]) -> EventRecord:
        if not self._fast:
            return self.slow(values)
        event_type = values[self._type]  # type: ignore[index]
        customer = values[self._customer]  # type: ignore[index]
        product = values[self._product]  # type: ignore[index]
        stamp = values[self._timestamp]  # type: ignore[index]
        event_id = "" if self._event_id is None else values[self._event_id]
        quantity = "" if self._quantity is None else values[self._quantity]
        value = "" if self._value is None else values[self._value]
        session = "" if self._session is None else values[self._session]
        query = "" if self._query is None else values[self._query]
        recommendation = "" if self._recommendation is None else values[self._recommendation]
        if (
            event_type not in self.event_types
            or event_type == "search"
            or not customer
            or not product
            or len(customer) > MAX_ID_LENGTH
            or len(product) > MAX_ID_LENGTH
            or len(event_id) > MAX_EVENT_ID_LENGTH
            or len(session) > MAX_ID_LENGTH
            or len(query) > MAX_SEARCH_QUERY_LENGTH
            # One C-level check of both ids and one of the other text: the common row passes.
            or not (
                ((ids := customer + product).isascii() and ids.isalnum())
                or (_ID.match(customer) and _ID.match(product))
            )
            or not (event_id + session + query).isprintable()
            or event_id != event_id.strip()
            or session != session.strip()
            or query != query.strip()
            or (recommendation and not _UUID.fullmatch(recommendation))
        ):
            return self.slow(values)
        try:
            moment = datetime.fromisoformat(stamp)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):
            return self.slow(values)
        if stamp != stamp.strip() or moment > self.latest:
            return self.slow(values)
        if not quantity:
            count = 1
        elif quantity.isdigit() and quantity.isascii() and len(quantity) <= 10:
            count = int(quantity)
            if count < 1 or count > _MAX_QUANTITY:
                return self.slow(values)
        else:
            return self.slow(values)
        amount = None
        if value:
            try:
                number = Decimal(value)
            except InvalidOperation:
                return self.slow(values)
            if value != value.strip() or not number.is_finite() or not 0 <= number < _MONEY_LIMIT:
                return self.slow(values)
            amount = number.quantize(_MONEY)
            if amount > MAX_MONEY:
                return self.slow(values)
        record = EventRecord(
            event_id=event_id,
            customer_id=customer,
            product_id=product,
            event_type=event_type,
            occurred_at=moment,
            quantity=count,
            value=amount,
            session_id=session,
            search_query=query,
            recommendation_id=recommendation.lower(),
        )
        if not event_id:
            record.event_id = derived_event_id(record)
        return record
