"""Who is acting: the request being served (a login or an API token), or a command.

:class:`AuditContextMiddleware` puts the request in a context variable for the audit log's
writers, which read its principal lazily: DRF authenticates a token inside the view and sets
``user`` and ``auth`` on the underlying request, after the middleware ran. Commands name
themselves with :func:`acting_as`. Anything else (beat, a worker) is ``system``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("privacy_request", default=None)
_label: contextvars.ContextVar[str | None] = contextvars.ContextVar("privacy_actor", default=None)


@dataclass(frozen=True, slots=True)
class Actor:
    label: str
    user: Any = None  # The login, when a person acted.


def _describe(request: Any) -> Actor:
    from accounts.models import ApiToken

    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return Actor(f"token:{auth.prefix} ({auth.name})"[:200])
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return Actor(f"user:{user.get_username()}"[:200], user)
    return Actor("anonymous")


def current_actor() -> Actor:
    label = _label.get()
    if label is not None:
        return Actor(label)
    request = _request.get()
    return _describe(request) if request is not None else Actor("system")


def current_request() -> Any:
    return _request.get()


@contextmanager
def acting_as(label: str) -> Iterator[None]:
    """Name the actor of what runs inside (a management command: ``command:<name>``)."""
    token = _label.set(label)
    try:
        yield
    finally:
        _label.reset(token)


@contextmanager
def serving(request: Any) -> Iterator[None]:
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)
