"""The access export: everything recsite holds about one customer, as JSON."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from privacy.keys import customer_key
from privacy.registry import forget_handlers
from recommender.models import Customer

from .audit import audit_record

EXPORT_FORMAT = "recsite-customer-export"
EXPORT_VERSION = 1


def customer_export(*, customer: Customer) -> dict[str, Any]:
    """Each registered handler's part (customer, activity, events, lists served, churn scores,
    interest tags, and what other apps add), in one document; the export is audited."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(),
    }
    for handler in forget_handlers():
        document.update(handler.export(customer))
    audit_record(
        action="customer.export",
        target=f"customer-key:{customer_key(customer.external_id)}",
        detail={"events": len(document.get("events", []))},
    )
    return document
