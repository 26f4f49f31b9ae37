"""One error format for every refused API request.

Any 400 answer looks like::

    {"detail": "price: must be a finite number >= 0, got -1",
     "errors": [{"index": 3, "field": "price", "message": "must be a finite number >= 0, got -1"}]}

``detail`` is a sentence for a person; ``errors`` lists every problem for a program, naming the
body field or query parameter. ``index`` appears only for an item of a batch, and points into
its ``items`` list. DRF's own validation errors (query parameters, token input) are reshaped to
the same format by :func:`api_exception_handler`, so a client parses one shape.
"""

from collections.abc import Iterator
from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

NON_FIELD = "non_field_errors"


def error_entry(*, field: str, message: str, index: int | None = None) -> dict[str, Any]:
    if index is None:
        return {"field": field, "message": message}
    return {"index": index, "field": field, "message": message}


class InvalidRequest(exceptions.APIException):
    """A 400 answer in the house format, for errors a view finds itself (batches)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, *, detail: str, errors: list[dict[str, Any]]) -> None:
        # APIException would turn the strings into ErrorDetail objects; a plain dict keeps the
        # body exactly as built (ints stay ints).
        super().__init__()
        body: Any = {"detail": detail, "errors": errors}
        self.detail = body


def _flatten(detail: Any, path: str) -> Iterator[dict[str, Any]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                name = f"{path}[{key}]"
            elif key == NON_FIELD and path:
                name = path
            else:
                name = f"{path}.{key}" if path else str(key)
            yield from _flatten(value, name)
    elif isinstance(detail, list):
        for value in detail:
            yield from _flatten(value, path)
    else:
        yield error_entry(field=path or NON_FIELD, message=str(detail))


def summary(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with validation errors reshaped to ``{"detail", "errors"}``."""
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = list(_flatten(exc.detail, ""))
        response.data = {"detail": summary(errors), "errors": errors}
    return response


class HouseErrorsMixin:
    """Gives a view the house error format without touching the project-wide settings."""

    def get_exception_handler(self) -> Any:
        return api_exception_handler
