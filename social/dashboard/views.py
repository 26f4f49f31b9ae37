"""The customer inspector's network panel (a fragment loaded by the inspector page)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from accounts.access import dashboard_view
from recommender.models import Product
from recommender.selectors.catalog import customer_get
from social import selectors


@dashboard_view
@require_GET
def customer_network(request: HttpRequest, external_id: str) -> HttpResponse:
    """Who the customer follows or trusts, how many point at them, the second hop, and what
    their direct network touched most (the social source's material). Always 200, with a
    message when there is nothing."""
    customer = customer_get(external_id=external_id)
    panel = selectors.customer_network_panel(customer=customer) if customer else None
    bought = []
    if panel is not None and panel.bought:
        products = Product.objects.in_bulk([pk for pk, _ in panel.bought])
        bought = [(products[pk], count) for pk, count in panel.bought if pk in products]
    return render(
        request,
        "social/fragments/customer_network.html",
        {"customer": customer, "external_id": external_id, "panel": panel, "bought": bought},
    )


urlpatterns = [
    path("customers/<str:external_id>/network", customer_network, name="customer-network"),
]
