"""Customers, known by the merchant's id."""

from django.db import models


class Customer(models.Model):
    """A shopper of the merchant's shop (not a login of recsite), keyed by the merchant's id."""

    # Unique through Meta.constraints rather than unique=True: on PostgreSQL that skips the extra
    # LIKE-pattern index Django adds for unique text columns, which nothing queries and every
    # customer created on the fly by an import paid for.
    external_id = models.CharField(max_length=128, help_text="The merchant's customer id.")
    attributes = models.JSONField(default=dict, blank=True, help_text="Free attributes.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="customer_external_id_unique"),
        ]

    def __str__(self) -> str:
        return self.external_id
