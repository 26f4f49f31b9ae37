"""Writing the audit log: one entry per action, never changed (the model refuses it)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from privacy.context import Actor, current_actor, current_request
from privacy.models import AuditEntry


def audit_record(
    *,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Append an entry: ``actor`` (default: whoever is acting now) did ``action`` to ``target``.

    An entry recorded while a request is served marks it as audited, so the request-level entry
    of :class:`privacy.middleware.AuditContextMiddleware` is not written twice.
    """
    actor = actor or current_actor()
    user = actor.user
    person = user is not None and getattr(user, "is_authenticated", False)
    entry = AuditEntry.objects.create(
        at=timezone.now(),
        actor=actor.label[:200],
        user_id=user.pk if person else None,
        action=action[:64],
        target=target[:200],
        detail=detail or {},
    )
    request = current_request()
    if request is not None:
        request.privacy_audited = True
    return entry
