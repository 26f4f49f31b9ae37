"""Reads: which scopes a request's principal holds."""

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from recommender.caching import Reloading

from .models import ApiToken, hash_token
from .roles import ROLE_SCOPES, Role, Scope

# Verified tokens per process, by key hash. Shop back ends send the same token on every request;
# reading it from the database each time was a tenth of the recommendations endpoint's time.
# Revocation through ``api_token_revoke`` clears this process's entry at once; other processes
# notice within RECSITE_TOKEN_CACHE_SECONDS. An unknown or revoked key is never held.
_tokens: Reloading[str, ApiToken] = Reloading(
    lambda: settings.RECSITE_TOKEN_CACHE_SECONDS, max_entries=10_000
)


def api_token_get_active(*, raw: str) -> ApiToken | None:
    key_hash = hash_token(raw)
    token = _tokens.get(
        key_hash,
        lambda _held: ApiToken.objects.filter(key_hash=key_hash, revoked_at__isnull=True).first(),
    )
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    return token


def api_token_cache_forget(*, key_hash: str | None = None) -> None:
    """Drop one token (by its hash) or all from this process's cache of verified tokens."""
    _tokens.forget(key_hash)


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
