"""Product embeddings: one vector per product and model, with the hash of the text embedded."""

from django.db import models

from .catalog import Product


class ProductEmbedding(models.Model):
    """A product's vector, with the model and the text it was computed from.

    ``text_hash`` is a hash of the exact embedding text plus the model name: a product whose text
    (or the configured model) changes gets a different hash, and only those are re-embedded.
    """

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="embedding")
    model_name = models.CharField(max_length=255)
    text_hash = models.CharField(max_length=64)
    dimension = models.PositiveSmallIntegerField()
    vector = models.BinaryField(help_text="float32, L2-normalised, little-endian.")
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["model_name"], name="embedding_model")]

    def __str__(self) -> str:
        return f"embedding of product {self.product_id} ({self.model_name})"
