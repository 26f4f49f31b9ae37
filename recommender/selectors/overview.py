"""Headline counts of what recsite holds."""

from dataclasses import dataclass

from django.db.models import Max, Min

from recommender.models import Customer, Event, Product


@dataclass(frozen=True, slots=True)
class CatalogueOverview:
    products: int
    active_products: int
    customers: int
    events: int
    first_event_at: object
    last_event_at: object


def catalogue_overview() -> CatalogueOverview:
    span = Event.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    return CatalogueOverview(
        products=Product.objects.count(),
        active_products=Product.objects.filter(is_active=True).count(),
        customers=Customer.objects.count(),
        events=Event.objects.count(),
        first_event_at=span["first"],
        last_event_at=span["last"],
    )
