"""Per-app forget handlers: how each app exports, purges and checks what it holds about a
customer.

An app that stores anything about customers (``social``'s relationships, ``experiments``'
assignments, ...) registers one :class:`ForgetHandler` from its ``AppConfig.ready()``::

    from privacy.registry import ForgetHandler, forget_handler_register

    forget_handler_register(ForgetHandler(
        name="social",
        export=lambda customer: {"relationships": [...]},      # JSON-able, for the export
        purge=lambda request: {"relationships_deleted": n},    # idempotent; runs in the job
        check=lambda request: ["2 relationship rows"],         # what still holds them
    ))

``export`` receives the live ``Customer``; ``purge`` and ``check`` receive the
:class:`privacy.models.ForgetRequest` (``customer_pk``, ``requested_at``): by then the customer
row is gone. Rows that point at the customer with ``on_delete=CASCADE`` are deleted with it at
once; ``purge`` is for what a cascade does not reach (derived files, caches, copies keyed by
the shop's id). An empty list from ``check`` means "nothing of theirs here". Every handler runs
in the purge job and in ``manage.py privacy_check``; a handler that raises fails the job, and
the request stays pending (and overdue after its deadline) until a later run succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recommender.models import Customer

    from .models import ForgetRequest


def _no_export(customer: Customer) -> Mapping[str, Any]:
    return {}


def _no_purge(request: ForgetRequest) -> Mapping[str, Any]:
    return {}


def _no_check(request: ForgetRequest) -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class ForgetHandler:
    name: str
    export: Callable[[Customer], Mapping[str, Any]] = _no_export
    purge: Callable[[ForgetRequest], Mapping[str, Any]] = _no_purge
    check: Callable[[ForgetRequest], list[str]] = _no_check


_HANDLERS: dict[str, ForgetHandler] = {}


def forget_handler_register(handler: ForgetHandler) -> None:
    """Register (or replace, by name: ``ready()`` may run twice in tests) an app's handler."""
    _HANDLERS[handler.name] = handler


def forget_handler_unregister(name: str) -> None:
    _HANDLERS.pop(name, None)


def forget_handlers() -> list[ForgetHandler]:
    """The registered handlers, in registration order."""
    return list(_HANDLERS.values())
