"""Reads behind the catalogue, customer, event and job endpoints.

Querysets are returned unevaluated so that the API can filter and paginate them in the database.
"""

from django.db.models import Count, Q, QuerySet

from recommender.models import Customer, Event, Product


def products_awaiting_embedding(*, model_name: str) -> QuerySet[Product]:
    """Products a sweep or reindex would embed: flagged stale, or active without a vector of
    ``model_name``."""
    unembedded = Q(is_active=True) & ~Q(embedding__model_name=model_name)
    return Product.objects.filter(Q(embedding_stale=True) | unembedded).distinct()


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("external_id")


def product_get(*, external_id: str) -> Product | None:
    return Product.objects.filter(external_id=external_id).first()


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("external_id")


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()


def customer_event_counts(*, customer: Customer) -> dict[str, int]:
    """Number of events of each type this customer has, e.g. ``{"purchase": 2, "view": 7}``."""
    rows = (
        Event.objects.filter(customer=customer)
        .order_by("event_type")
        .values_list("event_type")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def event_list() -> QuerySet[Event]:
    # Only the external ids of the related rows are shown: joining them avoids one query per
    # event, and `only` keeps long product descriptions out of the result set.
    return Event.objects.select_related("customer", "product").only(
        "event_id",
        "event_type",
        "occurred_at",
        "quantity",
        "value",
        "session_id",
        "search_query",
        "recommendation_id",
        "received_at",
        "customer__external_id",
        "product__external_id",
    )
