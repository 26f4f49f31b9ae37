"""Who acts, for the audit log, and one audit entry per change made over HTTP.

Every request runs with itself in :mod:`privacy.context`. A write (POST, PUT, PATCH, DELETE)
under ``/api/``, ``/dashboard/`` or ``/admin/`` that succeeded (a 2xx answer of the API; a
redirect of the pages, which redirect after a change and answer 200 to show a form's errors) and
recorded no entry of its own
(forgetting, exporting, a rule, a token, a configuration version: see
:mod:`privacy.receivers`) gets one here: the route, its path arguments, and the request's
fields (JSON or form; secrets masked). Ingestion (the batch endpoints) and the serving POSTs are
not configuration and are not recorded; a customer id in the path is recorded as its key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from .context import serving
from .keys import shop_customer_key
from .services.audit import audit_record

logger = logging.getLogger(__name__)

_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_PREFIXES = ("/api/", "/dashboard/", "/admin/")
# Writes that are data or serving, not changes of configuration.
_NOT_AUDITED = frozenset({
    "api:product-batch", "api:customer-batch", "api:event-batch", "api:recommendations-session",
    "dashboard:tuning-preview", "admin:login", "admin:logout", "login", "logout",
})  # fmt: skip
_SECRET_WORDS = ("password", "secret", "csrf", "token_value", "raw")
_MAX_FIELDS = 4000


def _masked(fields: Any) -> Any:
    if isinstance(fields, dict):
        return {
            k: "***" if any(w in str(k).lower() for w in _SECRET_WORDS) else _masked(v)
            for k, v in fields.items()
        }
    if isinstance(fields, list):
        return [_masked(v) for v in fields]
    return fields


def _fields(request: HttpRequest, body: bytes | None) -> Any:
    if request.content_type == "application/json":
        try:
            fields = json.loads(body or b"null")
        except ValueError:
            return None
    else:
        fields = {k: v if len(v) > 1 else v[0] for k, v in request.POST.lists()}
    # As JSON text without NUL (PostgreSQL's jsonb has none) and unpaired surrogates.
    text = json.dumps(_masked(fields), default=str, ensure_ascii=False).replace("\\u0000", "")
    text = text.encode("utf-8", "replace").decode("utf-8")  # A lone surrogate becomes "?".
    if len(text) > _MAX_FIELDS:
        return {"truncated": text[:_MAX_FIELDS]}
    return json.loads(text)


def _succeeded(request: HttpRequest, status: int) -> bool:
    if request.path.startswith("/api/"):
        return 200 <= status < 300
    return 300 <= status < 400


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        audited = request.method not in _SAFE and request.path.startswith(_PREFIXES)
        match = None
        body = None
        if audited:
            try:
                match = resolve(request.path_info)
            except Resolver404:
                audited = False
        if audited and match is not None and match.view_name not in _NOT_AUDITED:
            if request.content_type == "application/json":
                try:  # Read now: after DRF's parser consumed the stream it cannot be read again.
                    body = request.body
                except Exception:  # noqa: BLE001 - too big or unreadable: no fields recorded.
                    body = None
        else:
            audited = False
        with serving(request):
            response = self.get_response(request)
            if (
                audited
                and match is not None
                and _succeeded(request, response.status_code)
                and not getattr(request, "privacy_audited", False)
            ):
                kwargs = {
                    k: f"key:{shop_customer_key(str(v))}" if "customer" in k else v
                    for k, v in match.kwargs.items()
                    if k != "version"
                }
                try:
                    audit_record(
                        action=f"http.{request.method.lower()}" if request.method else "http",
                        target=match.view_name,
                        detail={
                            "path_args": kwargs,
                            "status": response.status_code,
                            "fields": _fields(request, body),
                        },
                    )
                except Exception:  # The change is made: say so in the log, answer as it is.
                    logger.exception("Audit entry of %s %s not written", request.method,
                                     match.view_name)  # fmt: skip
        return response
