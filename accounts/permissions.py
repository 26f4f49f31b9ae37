"""DRF permissions: each endpoint names the one scope it needs."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .roles import Scope
from .selectors import request_scopes


class _ScopePermission(BasePermission):
    scope: str = ""
    message = ""

    def has_permission(self, request: Request, view: Any) -> bool:
        return self.scope in request_scopes(request)


class HasReadScope(_ScopePermission):
    scope = Scope.READ
    message = "This endpoint needs the 'read' scope."


class HasIngestScope(_ScopePermission):
    scope = Scope.INGEST
    message = "This endpoint needs the 'ingest' scope."


class HasPrivacyScope(_ScopePermission):
    """Admins, and tokens made for privacy requests (the access export)."""

    scope = Scope.PRIVACY
    message = "This endpoint needs the 'privacy' scope (admins hold it)."


class IsAdminRole(_ScopePermission):
    scope = Scope.ADMIN
    message = "This endpoint is for admins."


class ReadOrIngestByMethod(BasePermission):
    """Safe methods need 'read'; writes need 'ingest'."""

    message = "This endpoint needs the 'read' scope to read and the 'ingest' scope to write."

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = Scope.READ if request.method in ("GET", "HEAD", "OPTIONS") else Scope.INGEST
        return needed in request_scopes(request)
