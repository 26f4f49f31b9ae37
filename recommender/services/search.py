"""Semantic features on the product vectors: search by text and similar products."""

from __future__ import annotations

import numpy as np

from recommender.models import Product, ProductEmbedding

from .embeddings import get_embedder, product_text, vector_from_bytes
from .index import nearest_active_products


def product_search(*, query: str, k: int) -> list[tuple[Product, float]]:
    """Active products whose meaning is nearest to a free-text query, best first."""
    vector = get_embedder().embed([query])[0]
    return nearest_active_products(vector=vector, k=k)


def product_vector(*, product: Product) -> np.ndarray:
    """The product's stored vector of the current model, or one computed now if it has none."""
    embedder = get_embedder()
    stored = ProductEmbedding.objects.filter(
        product=product, model_name=embedder.model_name
    ).first()
    if stored is not None and not product.embedding_stale:
        return vector_from_bytes(stored.vector, stored.dimension)
    return embedder.embed([product_text(product)])[0]


def product_semantic_neighbours(*, product: Product, k: int) -> list[tuple[Product, float]]:
    """Active products semantically nearest to ``product``, excluding itself, with their cosine
    scores: the raw neighbours of the vector index. The served "similar products" list (with
    merchandising rules and logging) is ``recommendations.similar_products``."""
    return nearest_active_products(
        vector=product_vector(product=product), k=k, exclude={product.pk}
    )
