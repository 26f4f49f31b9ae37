"""One error format for every refused API request.

Any 400 answer looks like::

    {"detail": "price: must be a finite number >= 0, got -1",
     "errors": [{"index": 3, "field": "price", "message": "must be a finite number >= 0, got -1"}]}

``detail`` is a sentence for a person; ``errors`` lists every problem for a program, naming the
body field or query parameter. ``index`` appears only for an item of a batch, and points into
its ``items`` list. DRF's own validation errors (query parameters, token input) are reshaped to
the same format by :func:`api_exception_handler`, so a client parses one shape.

400 means the request does not match the OpenAPI document (a wrong type, a value too long, a
refused character, an unknown field). 422 means it matches, but a rule the document cannot state
refuses it (an unknown product, a timestamp in the future, an id repeated in a batch); the body
is the same. Other refusals are ``{"detail"}`` only, also under /api/ for URLs that name no
endpoint (:func:`not_found`).
"""

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

NON_FIELD = "non_field_errors"
# The code of a refusal by a rule the schema cannot state (see recsite.api.fields).
RULE = "rule"


def error_entry(*, field: str, message: str, index: int | None = None) -> dict[str, Any]:
    if index is None:
        return {"field": field, "message": message}
    return {"index": index, "field": field, "message": message}


class InvalidRequest(exceptions.APIException):
    """A 400 answer in the house format, for errors a view finds itself (batches); with
    ``rule``, a 422: every value has its documented type and shape, but a rule the schema cannot
    state refuses it (an unknown product, a timestamp in the future, a repeated id)."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, *, detail: str, errors: list[dict[str, Any]], rule: bool = False) -> None:
        # APIException would turn the strings into ErrorDetail objects; a plain dict keeps the
        # body exactly as built (ints stay ints).
        super().__init__()
        body: Any = {"detail": detail, "errors": errors}
        self.detail = body
        if rule:
            self.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


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


def _codes(codes: Any) -> Iterator[str]:
    if isinstance(codes, dict):
        for value in codes.values():
            yield from _codes(value)
    elif isinstance(codes, list):
        for value in codes:
            yield from _codes(value)
    else:
        yield str(codes)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with validation errors reshaped to ``{"detail", "errors"}``.

    A validation error whose every problem has the code ``"rule"`` (a value of the documented
    type and shape that a rule the schema cannot state refuses) is answered with 422.
    """
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = list(_flatten(exc.detail, ""))
        response.data = {"detail": summary(errors), "errors": errors}
        if all(code == RULE for code in _codes(exc.get_codes())):
            response.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    return response


# Django-level answers under /api/ ----------------------------------------------------------------
API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(
    status_code: int, detail: str, errors: list[dict[str, Any]] | None = None
) -> JsonResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status_code)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: a URL under /api/ that names no endpoint gets the house JSON format."""
    if is_api_request(request):
        return json_error(
            404, f"No API endpoint at {request.path}; the endpoints are listed at /api/docs/."
        )
    return defaults.page_not_found(request, exception or Http404())


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an API client gets JSON even from a failure the API did not foresee."""
    if is_api_request(request):
        return json_error(500, "Internal server error; the failure is logged.")
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler400`` (a malformed request Django refuses before any view)."""
    if is_api_request(request):
        return json_error(400, "Bad request.")
    return defaults.bad_request(request, exception or SuspiciousOperation())
