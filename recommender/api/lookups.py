"""Path ids to rows for every API that takes one: one 404 text per kind of record."""

from rest_framework.exceptions import NotFound

from recommender.models import Customer, Product
from recommender.selectors.catalog import customer_get, product_get

# Primary keys are 64-bit; a larger number in a path names no record (and must not reach the
# database, which would refuse the comparison).
MAX_PK = 2**63 - 1


def int_or_404(pk: int, noun: str) -> int:
    """``pk`` when a record could have it; otherwise 404 "<noun> <pk> not found."."""
    if not 1 <= pk <= MAX_PK:
        raise NotFound(f"{noun} {pk} not found.")
    return pk


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
