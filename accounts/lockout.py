"""The answer to a login that django-axes has locked out (``AXES_LOCKOUT_CALLABLE``).

429 Too Many Requests with ``Retry-After``, as the API's rate limits answer: a page for people on
``/accounts/login/`` and ``/admin/login/``, JSON for a script (``X-Requested-With``).
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else None
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": get_failure_limit(request, credentials),
        "minutes": math.ceil(seconds / 60) if seconds else None,
    }
    response: HttpResponse
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        response = JsonResponse(
            {"detail": "Too many failed logins: this login is locked.", "retry_after": seconds},
            status=429,
        )
    else:
        response = render(request, "registration/locked_out.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
