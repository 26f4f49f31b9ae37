"""The shared catalogue in every app's API: merchant ids to products and customers (one 404
text each), and the product representation tagging and recommender both answer with."""

from rest_framework import serializers
from rest_framework.exceptions import NotFound

from recommender.models import Customer, Product
from recommender.selectors.catalog import customer_get, product_get
from recommender.selectors.recommendations import EventRow, customer_with_history


class ProductOutputSerializer(serializers.ModelSerializer):
    product_id = serializers.CharField(source="external_id")

    class Meta:
        model = Product
        fields = [
            "product_id", "title", "description", "category", "brand", "price", "tags",
            "attributes", "is_active", "created_at", "updated_at",
        ]  # fmt: skip


def product_or_404(product_id: str) -> Product:
    product = product_get(external_id=product_id)
    if product is None:
        raise NotFound(f"Product '{product_id}' not found.")
    return product


def customer_or_404(customer_id: str) -> Customer:
    customer = customer_get(external_id=customer_id)
    if customer is None:
        raise _customer_not_found(customer_id)
    return customer


def customer_with_history_or_404(customer_id: str) -> tuple[Customer, list[EventRow]]:
    """The customer and their newest events (one round trip on PostgreSQL), or 404."""
    found = customer_with_history(external_id=customer_id)
    if found is None:
        raise _customer_not_found(customer_id)
    return found


def _customer_not_found(customer_id: str) -> NotFound:
    return NotFound(f"Customer '{customer_id}' not found.")
