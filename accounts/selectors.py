"""Reads: which scopes a request's principal holds."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken, hash_token
from .roles import ROLE_SCOPES, Role, Scope


def api_token_get_active(*, raw: str) -> ApiToken | None:
    token = ApiToken.objects.filter(key_hash=hash_token(raw), revoked_at__isnull=True).first()
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    return token


def user_scopes(user: Any) -> frozenset[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return ROLE_SCOPES[Role.ADMIN]
    scopes: set[str] = set()
    for name in user.groups.values_list("name", flat=True):
        scopes |= ROLE_SCOPES.get(name, frozenset())
    return frozenset(scopes)


def user_role(user: Any) -> str | None:
    """The strongest role a login holds, for display."""
    scopes = user_scopes(user)
    if Scope.ADMIN in scopes:
        return Role.ADMIN
    if Scope.READ in scopes:
        return Role.MERCHANDISER
    return None


def request_scopes(request: Any) -> frozenset[str]:
    """Scopes of a DRF request: the token's when a token authenticated it, else the login's."""
    if isinstance(request.auth, ApiToken):
        return frozenset(request.auth.scopes)
    return user_scopes(request.user)


def api_token_list() -> QuerySet[ApiToken]:
    return ApiToken.objects.select_related("created_by").order_by("-created_at", "-id")


def api_token_get(*, pk: int) -> ApiToken | None:
    return api_token_list().filter(pk=pk).first()
