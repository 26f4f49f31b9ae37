"""Path ids to rows for every API that takes a merchant's product or customer id: one 404 text."""

from rest_framework.exceptions import NotFound

from recommender.models import Customer, Product
from recommender.selectors.catalog import customer_get, product_get


def product_or_404(product_id: str) -> Product:
    product = product_get(external_id=product_id)
    if product is None:
        raise NotFound(f"Product '{product_id}' not found.")
    return product


def customer_or_404(customer_id: str) -> Customer:
    customer = customer_get(external_id=customer_id)
    if customer is None:
        raise NotFound(f"Customer '{customer_id}' not found.")
    return customer
