"""The catalogue: products as the merchant describes them."""

from django.db import models


class Product(models.Model):
    """A product of the merchant's catalogue, keyed by the merchant's own product id."""

    external_id = models.CharField(
        max_length=128, unique=True, help_text="The merchant's product id (SKU)."
    )
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=255, blank=True, default="", db_index=True)
    brand = models.CharField(max_length=255, blank=True, default="", db_index=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="Merchant-supplied tags.")
    attributes = models.JSONField(default=dict, blank=True, help_text="Free attributes.")
    is_active = models.BooleanField(
        default=True, help_text="Inactive products are never recommended."
    )
    embedding_stale = models.BooleanField(
        default=True,
        db_index=True,
        help_text="Set when the text changes; the embedding sweep clears it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__isnull=True) | models.Q(price__gte=0),
                name="product_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.title}"
