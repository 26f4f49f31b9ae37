"""Reads: which scopes a request's principal holds."""

import threading
import time
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken, hash_token
from .roles import ROLE_SCOPES, Role, Scope

# Verified tokens per process: key hash -> (token, monotonic time it was read). Shop back ends
# send the same token on every request; reading it from the database each time was a tenth of
# the recommendations endpoint's time. Revocation through ``api_token_revoke`` clears this
# process's entry at once; other processes notice within RECSITE_TOKEN_CACHE_SECONDS.
_tokens: dict[str, tuple[ApiToken, float]] = {}
_tokens_lock = threading.Lock()
_TOKENS_MAX = 10_000


def api_token_get_active(*, raw: str) -> ApiToken | None:
    key_hash = hash_token(raw)
    ttl = settings.RECSITE_TOKEN_CACHE_SECONDS
    cached = _tokens.get(key_hash) if ttl > 0 else None
    if cached is not None and time.monotonic() - cached[1] < ttl:
        token: ApiToken | None = cached[0]
    else:
        token = ApiToken.objects.filter(key_hash=key_hash, revoked_at__isnull=True).first()
        if ttl > 0:
            with _tokens_lock:
                if token is None:
                    _tokens.pop(key_hash, None)
                else:
                    if len(_tokens) >= _TOKENS_MAX:
                        _tokens.clear()
                    _tokens[key_hash] = (token, time.monotonic())
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    return token


def api_token_cache_forget(*, key_hash: str | None = None) -> None:
    """Drop one token (by its hash) or all from this process's cache of verified tokens."""
    with _tokens_lock:
        if key_hash is None:
            _tokens.clear()
        else:
            _tokens.pop(key_hash, None)


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
