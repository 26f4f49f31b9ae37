from django.db import models


class Customer(models.Model):
    """A shopper of the merchant's shop (not a login of recsite), keyed by the merchant's id."""

    external_id = models.CharField(
        max_length=128, unique=True, help_text="The merchant's customer id."
    )
    attributes = models.JSONField(default=dict, blank=True, help_text="Free attributes.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return self.external_id
