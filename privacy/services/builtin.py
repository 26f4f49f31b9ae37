"""What recommender, churn and tagging hold about a customer, as forget handlers
(:mod:`privacy.registry`), registered by ``PrivacyConfig.ready``.

Rows: the customer, their events, the lists served to them (recommendation logs), their churn
scores, activity aggregates and interest tags all go with the customer row at once
(``customer_forget``: cascades, and the aggregates by key). The purge handler deletes any row
left by the customer's old id anyway (idempotent) and the check counts them. Derived files (the
engine's builds and their tuning samples, churn models) are the purge job's own steps
(:mod:`privacy.services.forgetting`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from churn.models import ChurnScore
from privacy.models import ForgetRequest
from privacy.registry import ForgetHandler
from recommender.models import (
    Customer,
    CustomerActivity,
    CustomerDay,
    CustomerWeek,
    Event,
    RecommendationLog,
)
from tagging.selectors import customer_interest_tags

_ROWS: tuple[tuple[str, Any], ...] = (
    ("customer rows", Customer),
    ("events", Event),
    ("recommendation logs", RecommendationLog),
    ("churn scores", ChurnScore),
    ("activity rows", CustomerActivity),
    ("customer-day rows", CustomerDay),
    ("customer-week rows", CustomerWeek),
)


def _rows(model: Any, customer_pk: int) -> Any:
    if model is Customer:
        return Customer.objects.filter(pk=customer_pk)
    return model.objects.filter(customer_id=customer_pk)


def rows_purge(request: ForgetRequest) -> Mapping[str, Any]:
    deleted = {}
    for label, model in _ROWS:
        n, _ = _rows(model, request.customer_pk).delete()
        if n:
            deleted[label] = n
    return {"rows_deleted": deleted} if deleted else {}


def rows_check(request: ForgetRequest) -> list[str]:
    found = []
    for label, model in _ROWS:
        n = _rows(model, request.customer_pk).count()
        if n:
            found.append(f"{n} {label} of customer row {request.customer_pk}")
    return found


def _event(row: Event) -> dict[str, Any]:
    return {
        "event_id": row.event_id,
        "product_id": row.product.external_id if row.product else None,
        "event_type": row.event_type,
        "occurred_at": row.occurred_at.isoformat(),
        "quantity": row.quantity,
        "value": None if row.value is None else str(row.value),
        "session_id": row.session_id,
        "search_query": row.search_query,
        "received_at": row.received_at.isoformat(),
    }


def recommender_export(customer: Customer) -> Mapping[str, Any]:
    events = (
        Event.objects.filter(customer=customer)
        .select_related("product")
        .order_by("occurred_at", "id")
    )
    logs = RecommendationLog.objects.filter(customer=customer).order_by("created_at", "id")
    activity = CustomerActivity.objects.filter(customer=customer).first()
    return {
        "customer": {
            "id": customer.external_id,
            "attributes": customer.attributes,
            "created_at": customer.created_at.isoformat(),
            "updated_at": customer.updated_at.isoformat(),
        },
        "activity": {
            "events": activity.events if activity else 0,
            "last_event_at": activity.last_event_at.isoformat()
            if activity and activity.last_event_at
            else None,
        },
        "events": [_event(e) for e in events],
        "lists_served": [
            {
                "recommendation_id": str(log.recommendation_id),
                "kind": log.kind,
                "served_at": log.created_at.isoformat(),
                "config_version": log.config_version,
                "engine_build": log.engine_build,
                "product_ids": log.product_ids,  # The shop's ids, as served.
            }
            for log in logs
        ],
    }


def churn_export(customer: Customer) -> Mapping[str, Any]:
    scores = ChurnScore.objects.filter(customer=customer).order_by("as_of", "id")
    return {
        "churn_scores": [
            {
                "as_of": s.as_of.isoformat(),
                "score": s.score,
                "band": s.band,
                "model_version": s.model_version,
                "drivers": s.drivers,
                "computed_at": s.computed_at.isoformat(),
            }
            for s in scores
        ]
    }


def tagging_export(customer: Customer) -> Mapping[str, Any]:
    return {
        "interest_tags": [
            {"tag": t.tag, "weight": round(t.weight, 6), "events": t.events}
            for t in customer_interest_tags(customer=customer, limit=50)
        ]
    }


def handlers() -> list[ForgetHandler]:
    """The built-in handlers, in the order their parts appear in the export."""
    return [
        ForgetHandler(name="recommender", export=recommender_export, purge=rows_purge,
                      check=rows_check),
        ForgetHandler(name="churn", export=churn_export),
        ForgetHandler(name="tagging", export=tagging_export),
    ]  # fmt: skip
