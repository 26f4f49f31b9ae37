from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class DefaultPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class EventCursorPagination(CursorPagination):
    """Events grow without bound: a cursor stays fast and stable where an offset would not."""

    page_size = 100
    max_page_size = 1000
    page_size_query_param = "limit"
    ordering = ("-occurred_at", "-id")
