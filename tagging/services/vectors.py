"""The product vectors auto-tagging scores: the tagging encoder's (``RECSITE_TAGGING_MODEL``).

When the tagging encoder is the index's, they are the index's stored embeddings. When it differs,
tagging keeps its own (:class:`~tagging.models.TaggingVector`), embedded here with the tagging
encoder: only products whose (model, text) hash changed are embedded, so a model change
re-embeds every product and vectors of two models are never scored together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import numpy as np
from django.db import transaction

from recommender.models import Product, ProductEmbedding
from recommender.services.embeddings import (
    embeddings_matrix,
    get_embedder,
    product_text,
    product_vectors_changed,
    product_vectors_save,
    vector_from_bytes,
)

from ..models import TaggingVector

logger = logging.getLogger(__name__)

CHUNK = 2048


def tagging_has_own_encoder() -> bool:
    return get_embedder("tagging").model_name != get_embedder("index").model_name


def tagging_vectors_refresh(*, progress: Callable[[float], None] | None = None) -> int:
    """Embed, with the tagging encoder, every active product whose text or model changed since
    its tagging vector (nothing when tagging uses the index's encoder). Returns how many."""
    if not tagging_has_own_encoder():
        return 0
    embedder = get_embedder("tagging")
    products = Product.objects.filter(is_active=True).order_by("pk")
    total, done, embedded, last_pk = products.count(), 0, 0, 0
    while True:
        rows = list(
            products.filter(pk__gt=last_pk).values(
                "pk", "title", "description", "category", "brand", "tags"
            )[:CHUNK]
        )
        if not rows:
            break
        last_pk = rows[-1]["pk"]
        texts = {row["pk"]: product_text(row) for row in rows}
        changed = product_vectors_changed(TaggingVector, texts, embedder=embedder)
        with transaction.atomic():
            product_vectors_save(TaggingVector, changed)
        embedded += len(changed)
        done += len(rows)
        if progress is not None:
            progress(done / total)
    logger.info("Tagging vectors: %d embedded with %s", embedded, embedder.model_name)
    return embedded


def tagging_vectors() -> tuple[np.ndarray, np.ndarray, str]:
    """(product ids, vectors, model name) of active products in the tagging encoder's space,
    ordered by id; only vectors of that model, never a mix."""
    embedder = get_embedder("tagging")
    if not tagging_has_own_encoder():
        ids, vectors = embeddings_matrix(model_name=embedder.model_name)
        return ids, vectors, embedder.model_name
    tagging_vectors_refresh()
    rows = list(
        TaggingVector.objects.filter(model_name=embedder.model_name, product__is_active=True)
        .order_by("product_id")
        .values_list("product_id", "dimension", "vector")
    )
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32), embedder.model_name
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.stack([vector_from_bytes(r[2], r[1]) for r in rows]).astype(np.float32)
    return ids, vectors, embedder.model_name


def tagging_vectors_changed_since(since: datetime) -> set[int]:
    """Products whose tagging vector was (re)computed at or after ``since``."""
    model = TaggingVector if tagging_has_own_encoder() else ProductEmbedding
    return set(model.objects.filter(updated_at__gte=since).values_list("product_id", flat=True))
