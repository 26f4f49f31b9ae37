"""What the social app holds about a customer, for the privacy app's export, purge and check
(``privacy.registry``, docs/privacy.md): the relationships they are on either end of."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q

from .models import Relationship

if TYPE_CHECKING:
    from privacy.models import ForgetRequest
    from recommender.models import Customer


def _edges(customer_pk: int) -> Any:
    return Relationship.objects.filter(Q(source_id=customer_pk) | Q(target_id=customer_pk))


def relationships_export(customer: Customer) -> dict[str, Any]:
    rows = _edges(customer.pk).select_related("source", "target").order_by("pk")
    return {
        "relationships": [
            {
                "source": edge.source.external_id,
                "target": edge.target.external_id,
                "type": edge.type,
                "weight": edge.weight,
                "created_at": edge.created_at.isoformat(),
            }
            for edge in rows
        ]
    }


def relationships_purge(request: ForgetRequest) -> dict[str, int]:
    """Edges left pointing at the forgotten customer (the cascade removes them with the
    customer row; this is idempotent insurance)."""
    deleted, _ = _edges(request.customer_pk).delete()
    return {"relationships_deleted": deleted}


def relationships_check(request: ForgetRequest) -> list[str]:
    left = _edges(request.customer_pk).count()
    return [f"{left} relationship rows"] if left else []
