"""Signal receivers: the tombstone of a forgotten customer, and audit entries for changes made
through any door (API, dashboard, admin, commands) to configurations, rules and tokens."""

from __future__ import annotations

from typing import Any

from .services.audit import audit_record
from .services.forgetting import forget_request_record


def on_customer_forgotten(
    sender: Any, *, customer_pk: int, external_id: str, events_deleted: int, **kwargs: Any
) -> None:
    forget_request_record(
        customer_pk=customer_pk, external_id=external_id, events_deleted=events_deleted
    )


def on_config_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created:
        audit_record(
            action="config.version",
            target=f"recommendation-config:{instance.version}",
            detail={"note": instance.note, "active": instance.is_active},
        )


def on_rule_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    audit_record(
        action="rule.create" if created else "rule.change",
        target=f"rule:{instance.pk}",
        detail={"name": getattr(instance, "name", ""), "active": instance.is_active},
    )


def on_rule_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    audit_record(action="rule.delete", target=f"rule:{instance.pk}")


def on_token_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if created:
        detail = {"name": instance.name, "scopes": list(instance.scopes)}
        audit_record(action="token.create", target=f"token:{instance.pk}", detail=detail)
    elif fields is not None and "revoked_at" in fields and instance.revoked_at is not None:
        audit_record(action="token.revoke", target=f"token:{instance.pk}")
