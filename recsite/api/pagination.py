import re
from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, LimitOffsetPagination
from rest_framework.request import Request

from recommender.ingestion.values import TimestampError, parse_timestamp
from recsite.api.errors import RULE

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
# Beyond this an offset only costs the database a scan; a list that long is read with filters.
MAX_OFFSET = 2_147_483_647
# Cursors are short base64 texts made by the server.
MAX_CURSOR_LENGTH = 500


def _query_int(
    request: Request,
    name: str,
    *,
    minimum: int,
    default: int,
    cutoff: int | None = None,
    maximum: int | None = None,
) -> int:
    """A whole-number query parameter. DRF silently ignores a bad one; recsite answers 400.
    Above ``cutoff`` the value is lowered to it; above ``maximum`` it is refused."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):  # int() would also take " 5", "+5" and "5_000".
        raise ValidationError({name: [f"expected a whole number, got {raw!r}"]})
    value = int(raw)
    if value < minimum:
        raise ValidationError({name: [f"must be at least {minimum}, got {value}"]})
    if maximum is not None and value > maximum:
        raise ValidationError({name: [f"must be at most {maximum}, got {value}"]})
    return value if cutoff is None else min(value, cutoff)


def _bounded(parameters: list[dict[str, Any]], bounds: dict[str, dict[str, Any]]) -> list[Any]:
    """DRF's documented parameters with the bounds this module enforces."""
    for parameter in parameters:
        parameter["schema"].update(bounds.get(parameter["name"], {}))
    return parameters


class DefaultPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        return _query_int(
            request,
            self.limit_query_param,
            minimum=1,
            default=self.default_limit,
            cutoff=self.max_limit,
        )

    def get_offset(self, request: Request) -> int:
        return _query_int(
            request, self.offset_query_param, minimum=0, default=0, maximum=MAX_OFFSET
        )

    def get_schema_operation_parameters(self, view: Any) -> list[Any]:
        return _bounded(
            super().get_schema_operation_parameters(view),
            {
                self.limit_query_param: {"minimum": 1},
                self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
            },
        )


class EventCursorPagination(CursorPagination):
    """Events grow without bound: a cursor stays fast and stable where an offset would not."""

    page_size = 100
    max_page_size = 1000
    page_size_query_param = "limit"
    ordering = ("-occurred_at", "-id")

    def get_page_size(self, request: Request) -> int:
        return _query_int(
            request,
            self.page_size_query_param,
            minimum=1,
            default=self.page_size,
            cutoff=self.max_page_size,
        )

    def decode_cursor(self, request: Request) -> Cursor | None:
        """DRF answers a malformed cursor with 404, and a cursor whose position is not a moment
        made a 500; either is refused, naming the parameter. A cursor is opaque (any text the
        document allows may be one), so the refusal is a rule's, 422."""
        invalid = ValidationError(
            {self.cursor_query_param: ["invalid cursor; use the 'next' or 'previous' link"]},
            code=RULE,
        )
        raw = request.query_params.get(self.cursor_query_param)
        if raw is not None and len(raw) > MAX_CURSOR_LENGTH:
            raise invalid
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                parse_timestamp(str(cursor.position))  # The ordering's first field: occurred_at.
        except (NotFound, TimestampError, UnicodeError):
            raise invalid from None
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[Any]:
        return _bounded(
            super().get_schema_operation_parameters(view),
            {
                self.page_size_query_param: {"minimum": 1},
                self.cursor_query_param: {"maxLength": MAX_CURSOR_LENGTH},
            },
        )
