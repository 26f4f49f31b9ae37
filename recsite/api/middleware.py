"""Query parameters under /api/, checked once for every endpoint."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from recommender.ingestion.values import text_problem
from recsite.api.errors import error_entry, is_api_request, json_error, summary

EMPTY = "must not be empty; leave the parameter out instead"
# Swagger UI's page asks for its settings script as ``/api/docs/?script=``: a page, not an
# operation of the API.
DOCS_PATH = "/api/docs/"


class QueryParameterGuard:
    """Refuses, with 400 in the house format naming the parameter, a query parameter under
    /api/ whose value is empty (``?band=``: DRF and django-filter would read it as absent, so a
    client's mistake went unnoticed) or holds a refused character
    (:func:`recommender.ingestion.values.text_problem`).

    Middleware rather than a check in each view: every endpoint of every app gets it, including
    the paginators' and filters' parameters, and the OpenAPI document declares it once
    (``minLength`` and ``pattern`` on every string parameter, ``recsite.api.schema``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.META.get("QUERY_STRING")
            and is_api_request(request)
            and request.path != DOCS_PATH
        ):
            errors = []
            for name, given in request.GET.lists():
                problem = text_problem(name)
                if problem is not None:
                    errors.append(error_entry(field=name, message=f"the name {problem}"))
                    continue
                for value in given:
                    problem = EMPTY if value == "" else text_problem(value)
                    if problem is not None:
                        errors.append(error_entry(field=name, message=problem))
                        break
            if errors:
                return json_error(400, summary(errors), errors)
        return self.get_response(request)
