"""What experiments hold about a customer, for forgetting and the access export
(docs/privacy.md): their per-visitor totals (``VisitorStats``, keyed ``c:<customer id>``).

The totals are deleted inside the forget's own transaction (``customer_forgotten``), while the
shop's id is still known; the attribution job never writes them again because the customer's
served lists and events are gone with them. The export lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recommender.services.recommendations.variants import customer_visitor

from .models import VisitorStats

if TYPE_CHECKING:
    from recommender.models import Customer


def visitor_stats_export(customer: Customer) -> dict[str, Any]:
    rows = VisitorStats.objects.filter(visitor=customer_visitor(customer.external_id))
    return {
        "experiments": [
            {
                "experiment": row.experiment_id,
                "variant": row.variant,
                "impressions": row.impressions,
                "clicks": row.clicks,
                "carts": row.carts,
                "purchases": row.purchases,
                "revenue": str(row.revenue),
            }
            for row in rows.order_by("experiment_id")
        ]
    }


def visitor_stats_forget(*, external_id: str, **_: Any) -> None:
    """``customer_forgotten`` receiver: the forgotten customer's per-visitor totals go too."""
    VisitorStats.objects.filter(visitor=customer_visitor(external_id)).delete()
