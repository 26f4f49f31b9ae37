"""Request fields of the API: the house rules for text, merchant ids, timestamps and money,
and JSON types that are checked rather than converted.

DRF converts what it is given: ``"title": 5`` becomes ``"5"``, ``"is_active": "no"`` becomes
false, ``"k": "3"`` becomes 3. A request body is JSON, whose values carry their types, so
:class:`StrictInputSerializer` refuses a value of the wrong type instead (400 naming the field)
before DRF converts anything. Query parameters are text and are converted as usual.

Each field here also says which ``pattern`` the OpenAPI document declares for it
(``openapi_pattern``, read by :mod:`recsite.api.schema`), taken from
:mod:`recommender.ingestion.values`, the same definitions the row parser uses.
"""

import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recommender.ingestion import values
from recommender.ingestion.records import MAX_ID_LENGTH, MAX_MONEY, json_type
from recsite.api.errors import RULE

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def rule_error(message: str) -> serializers.ValidationError:
    """A refusal by a rule the schema cannot state: answered with 422 when every error of the
    request is one (``recsite.api.errors``)."""
    return serializers.ValidationError(message, code=RULE)


class TextField(serializers.CharField):
    """A string (never a number made into one) without refused characters.

    The length is checked as sent, before surrounding white space is trimmed, because that is
    what the documented ``maxLength`` counts.
    """

    @property
    def openapi_pattern(self) -> str:
        return values.TEXT_PATTERN if self.allow_blank else values.NONBLANK_TEXT_PATTERN

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"expected a string, got {json_type(data)}")
        if self.max_length is not None and len(data) > self.max_length:
            raise serializers.ValidationError(
                f"longer than {self.max_length} characters ({len(data)})"
            )
        problem = values.text_problem(data)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class WholeNumberField(serializers.IntegerField):
    """An integer; in a query parameter, digits with an optional minus sign and nothing else
    (DRF would also take ``1.0`` and `` 1``, which the document does not allow)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not _WHOLE_NUMBER.fullmatch(data):
            raise serializers.ValidationError(f"expected a whole number, got {data!r}")
        return int(super().to_internal_value(data))


class IdField(TextField):
    """A merchant's product or customer id (``values.ID_PATTERN``), as sent: never trimmed."""

    openapi_pattern = values.ID_PATTERN

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_ID_LENGTH)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        problem = values.id_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return value


class IdListField(TextField):
    """Comma-separated merchant ids in one query parameter, e.g. ``exclude=P1,P2``."""

    def __init__(self, *, max_ids: int, **kwargs: Any) -> None:
        self.max_ids = max_ids
        super().__init__(**kwargs)

    @property
    def openapi_pattern(self) -> str:
        one = values.ID_PATTERN.removeprefix("^").removesuffix("$")
        return f"^{one}(,{one})*$"

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]
        text = super().to_internal_value(data)
        ids = text.split(",")
        for part in ids:
            problem = values.id_problem(part)
            if problem is not None:
                raise serializers.ValidationError(
                    f"expected product ids separated by commas; {problem}"
                )
        if len(ids) > self.max_ids:
            raise serializers.ValidationError(f"at most {self.max_ids} product ids, got {len(ids)}")
        return ids


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampField(serializers.DateTimeField):
    """An ISO 8601 timestamp read by the one parser every door uses
    (:func:`values.parse_timestamp`): without an offset it is UTC. A moment outside years
    1-9999 once moved to UTC is refused by rule (422), or with ``clamp`` (a bound of a range
    filter) replaced by the earliest or latest moment."""

    def __init__(self, *, clamp: bool = False, **kwargs: Any) -> None:
        self.clamp = clamp
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise serializers.ValidationError(
                f"expected an ISO 8601 string, got {json_type(value)}"
            )
        problem = values.text_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        try:
            return values.parse_timestamp(value, clamp=self.clamp)
        except values.TimestampError as exc:
            if exc.out_of_range:
                raise rule_error(str(exc)) from None
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field(
    {"type": "number", "minimum": 0, "maximum": float(MAX_MONEY)},
)
class MoneyField(serializers.Field):
    """An amount of money: a JSON number from 0 to 9,999,999,999.99, rounded to cents."""

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError(f"expected a number, got {json_type(data)}")
        amount = Decimal(str(data))
        if not amount.is_finite() or amount < 0:
            raise serializers.ValidationError(f"must be a number >= 0, got {data!r}")
        if amount > MAX_MONEY:
            raise serializers.ValidationError(f"at most {MAX_MONEY}, got {data!r}")
        return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    def to_representation(self, value: Any) -> Any:
        return value


# JSON types of request bodies ------------------------------------------------------------------
def _choices_are_text(field: serializers.ChoiceField) -> bool:
    return all(isinstance(key, str) for key in field.choices)


def json_type_problem(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` (parsed JSON) has the wrong type for ``field``, or ``None``."""
    if value is None:
        return None if field.allow_null else "expected a value, got null"
    expected: str | None = None
    ok = True
    if isinstance(field, serializers.BooleanField):
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(field, serializers.IntegerField):
        expected, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(field, serializers.FloatField | serializers.DecimalField):
        expected = "a number"
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(field, serializers.ChoiceField) and not isinstance(
        field, serializers.MultipleChoiceField
    ):
        expected, ok = "a string", not _choices_are_text(field) or isinstance(value, str)
    elif isinstance(field, serializers.ListField | serializers.ListSerializer):
        if not isinstance(value, list):
            expected, ok = "an array", False
        else:
            child = field.child
            for index, item in enumerate(value):
                if child is None:
                    break
                problem = json_type_problem(child, item)
                if problem is not None:
                    return f"item {index}: {problem}"
    elif isinstance(field, serializers.DictField | serializers.Serializer):
        expected, ok = "an object", isinstance(value, dict)
    if ok:
        return None
    return f"expected {expected}, got {json_type(value)}"


class StrictInputSerializer(serializers.Serializer):
    """An input serializer whose JSON body values must have their declared types.

    Query parameters (a ``QueryDict``) are text and are converted as DRF does.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = {}
            for name, field in self.fields.items():
                if field.read_only or field.source == "*" or name not in data:
                    continue
                problem = json_type_problem(field, data[name])
                if problem is not None:
                    errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
