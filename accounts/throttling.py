"""API rate limits per principal and scope (DRF throttling): past its rate a client gets 429.

Every API request is counted in one scope, against one principal:

- ``serving``: views that declare ``throttle_scope = "serving"`` (recommendation lists, similar
  products, search, trending), which a shop back end calls for its visitors;
- ``admin``: writes to views only admins may use (starting jobs, managing tokens);
- ``read``: any other ``GET``, ``HEAD`` or ``OPTIONS``;
- ``write``: any other write (batches, deletes, rules, tags).

The principal is the API token, else the signed-in person, else the client's address (behind
proxies, ``RECSITE_PROXY_COUNT``). Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
(``RECSITE_API_RATE_<SCOPE>``); a scope whose rate is ``none`` is not limited.

Counting is a fixed window (one minute for ``…/min``) with one atomic cache increment per
request, not DRF's ``SimpleRateThrottle``: that keeps the time of every request in the window in
one cache entry and rewrites it on each request, which at the serving scope's 120,000 a minute
would read and write a list of 120,000 floats for every recommendation. A client may therefore
get up to twice its rate across the boundary of two windows. The counters live in Django's
default cache: with several processes it must be shared (``RECSITE_CACHE_URL``).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .models import ApiToken
from .permissions import IsAdminRole

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"120/min"`` → ``(120, 60)``; ``None``, ``""`` or ``"none"`` → no limit."""
    if not rate or rate.strip().lower() == "none":
        return None
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip()[:1]]
    except (ValueError, KeyError):
        raise ValueError(
            f"bad API rate {rate!r}: expected <requests>/<sec|min|hour|day> or 'none'"
        ) from None


def throttle_scope(request: Request, view: Any) -> str:
    declared = getattr(view, "throttle_scope", None)
    if declared:
        return str(declared)
    if request.method in SAFE_METHODS:
        return "read"
    for permission in getattr(view, "permission_classes", ()):
        if isinstance(permission, type) and issubclass(permission, IsAdminRole):
            return "admin"
    return "write"


def _count(key: str, *, ttl: int) -> int:
    """Add one to ``key`` in the default cache (created with ``ttl`` seconds to live) and return
    the count, atomically across processes sharing the cache."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        # One round trip (Django's own incr() asks whether the key exists first, then
        # increments: two, and add() a third in a window's first request).
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)  # type: ignore[attr-defined]
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(full_key)
        pipeline.expire(full_key, ttl)
        count, _ = pipeline.execute()
        return int(count)
    try:
        return int(backend.incr(key))
    except ValueError:  # The window's first request (or its entry was evicted).
        # Another process may add it first: then count on top of it.
        return 1 if backend.add(key, 1, timeout=ttl) else int(backend.incr(key))


class ScopeRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: float | None = None

    def principal(self, request: Request) -> str:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}"
        user = request.user
        if user is not None and user.is_authenticated and user.pk is not None:
            return f"user:{user.pk}"
        return f"address:{self.get_ident(request)}"

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = throttle_scope(request, view)
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        limit = parse_rate(None if rate is None else str(rate))
        if limit is None:
            return True
        allowed, seconds = limit
        now = time.time()
        window = int(now // seconds)
        count = _count(f"throttle:{scope}:{self.principal(request)}:{window}", ttl=seconds + 1)
        if count <= allowed:
            return True
        self._wait = (window + 1) * seconds - now
        return False

    def wait(self) -> float | None:
        return self._wait
