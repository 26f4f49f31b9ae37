from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, LimitOffsetPagination
from rest_framework.request import Request


def _query_int(
    request: Request, name: str, *, minimum: int, default: int, cutoff: int | None = None
) -> int:
    """A whole-number query parameter. DRF silently ignores a bad one; recsite answers 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"expected a whole number, got {raw!r}"]}) from None
    if value < minimum:
        raise ValidationError({name: [f"must be at least {minimum}, got {value}"]})
    return value if cutoff is None else min(value, cutoff)


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
        return _query_int(request, self.offset_query_param, minimum=0, default=0)


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
        # DRF answers a malformed cursor with 404; it is a bad parameter, so 400 naming it.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: ["invalid cursor; use the 'next' or 'previous' link"]}
            ) from None
