"""Product embeddings: one embedder per process, and the sweep that keeps vectors current.

Staleness is declared, not pushed: ingestion sets ``Product.embedding_stale`` when a product's
text changes, and :func:`product_embeddings_refresh` sweeps the flagged products in chunks. A
product whose embedding text (and model) hash matches its stored vector is not re-embedded, so a
re-import of unchanged data costs no model time; changing the configured model re-embeds
everything.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from recommender.ml.embedding import Embedder, HashingEmbedder, TransformerEmbedder
from recommender.ml.model_install import resolve_model
from recommender.ml.text import embedding_text_hash, product_embedding_text
from recommender.models import Product, ProductEmbedding

logger = logging.getLogger(__name__)


PURPOSES = ("index", "tagging")


def encoder_model_path(purpose: str = "index") -> str | None:
    """The model directory of the encoder configured for ``purpose`` (None: the packaged
    all-MiniLM-L6-v2): ``index`` (vector index, search, recommendations) reads
    RECSITE_EMBED_MODEL (else RECSITE_MODEL_PATH), ``tagging`` RECSITE_TAGGING_MODEL (else
    the index's). A registered name resolves into RECSITE_MODEL_DIR."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose: expected one of {', '.join(PURPOSES)}, got {purpose!r}")
    value = settings.RECSITE_EMBED_MODEL or settings.RECSITE_MODEL_PATH
    if purpose == "tagging" and settings.RECSITE_TAGGING_MODEL:
        value = settings.RECSITE_TAGGING_MODEL
    return resolve_model(value, Path(settings.RECSITE_MODEL_DIR))


@functools.cache
def get_embedder(purpose: str = "index") -> Embedder:
    """The process-wide embedder of ``purpose`` built from settings (loaded once, on first
    use); one instance when both purposes name the same model."""
    model_path = encoder_model_path(purpose)
    if purpose != "index" and model_path == encoder_model_path("index"):
        return get_embedder("index")
    kind = settings.RECSITE_EMBEDDER
    if kind == "hashing":
        # Tests give a purpose a hashing model of its own by naming it (``hashing-v1-32``).
        named = re.fullmatch(r"hashing-v1-(\d+)", model_path or "")
        dimension = int(named.group(1)) if named else settings.RECSITE_HASHING_DIMENSION
        return HashingEmbedder(dimension=dimension)
    if kind == "transformer":
        return TransformerEmbedder(
            # None means the packaged all-MiniLM-L6-v2.
            model_path=model_path,
            device=settings.RECSITE_DEVICE,
            dtype=settings.RECSITE_EMBED_DTYPE,
            batch_size=settings.RECSITE_EMBED_BATCH_SIZE or None,
            max_length=settings.RECSITE_EMBED_MAX_TOKENS,
        )
    raise ValueError(f"RECSITE_EMBEDDER: expected 'transformer' or 'hashing', got {kind!r}")


def product_text(product: Any) -> str:
    """The text embedded for a product (a model instance or a dict of its fields)."""
    get = product.get if isinstance(product, dict) else functools.partial(getattr, product)
    return product_embedding_text(
        title=get("title") or "",
        category=get("category") or "",
        brand=get("brand") or "",
        tags=get("tags") or [],
        description=get("description") or "",
        template=settings.RECSITE_EMBED_TEXT_TEMPLATE,
        max_description_chars=settings.RECSITE_EMBED_DESCRIPTION_CHARS,
    )


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes | memoryview, dimension: int) -> np.ndarray:
    vector = np.frombuffer(bytes(data), dtype="<f4")
    if vector.shape != (dimension,):
        raise ValueError(f"stored vector has {vector.size} values, expected {dimension}")
    return vector


def embeddings_query(
    *, model_name: str, product_ids: Sequence[int] | None = None, active_only: bool = True
) -> QuerySet[ProductEmbedding]:
    """The stored embeddings of one model (of some products, of active products)."""
    queryset = ProductEmbedding.objects.filter(model_name=model_name)
    if product_ids is not None:
        queryset = queryset.filter(product_id__in=list(product_ids))
    if active_only:
        queryset = queryset.filter(product__is_active=True)
    return queryset


def embeddings_matrix(
    *, model_name: str, product_ids: Sequence[int] | None = None, active_only: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the stored embeddings of one model, ordered by product id.

    Streamed into one preallocated matrix, a chunk of rows at a time: a million vectors cost
    their 1.5 GB, not a list of a million byte strings on top of it.
    """
    queryset = embeddings_query(
        model_name=model_name, product_ids=product_ids, active_only=active_only
    )
    first = queryset.order_by("product_id").values_list("dimension", flat=True).first()
    if first is None:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    capacity = queryset.count()
    ids: np.ndarray = np.empty(capacity, dtype=np.int64)
    vectors: np.ndarray = np.empty((capacity, first), dtype=np.float32)
    n = 0
    rows = queryset.order_by("product_id").values_list("product_id", "dimension", "vector")
    for product_id, dimension, vector in rows.iterator(chunk_size=10_000):
        if n == capacity:
            break  # Embedded while reading: the next build has it.
        if dimension != first:
            raise ValueError(f"stored vectors of {model_name!r} differ in dimension: re-embed")
        ids[n] = product_id
        vectors[n] = vector_from_bytes(vector, dimension)
        n += 1
    if n < capacity:
        ids, vectors = ids[:n], vectors[:n]
    return ids, vectors


@dataclass(slots=True)
class RefreshCounts:
    products: int = 0  # Stale products swept.
    embedded: int = 0  # Vectors computed.
    unchanged: int = 0  # Stale flag cleared without embedding: text and model unchanged.
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def products_mark_stale_for_model(*, model_name: str) -> int:
    """Flag every product without a vector of ``model_name``; a model change re-embeds all."""
    return (
        Product.objects.filter(embedding_stale=False)
        .filter(Q(embedding__isnull=True) | ~Q(embedding__model_name=model_name))
        .update(embedding_stale=True)
    )


def product_vectors_changed(
    model: type[Any], texts: Mapping[int, str], *, embedder: Embedder
) -> list[Any]:
    """Unsaved ``model`` rows (one vector a product: ``ProductEmbedding`` or tagging's own
    vectors) for the products whose text or model changed since their stored vector, embedded
    now; the others are left out. A stored row counts only when both its model and its text
    hash are the embedder's."""
    hashes = {pk: embedding_text_hash(text, embedder.model_name) for pk, text in texts.items()}
    current = dict(
        model.objects.filter(
            product_id__in=list(texts), model_name=embedder.model_name
        ).values_list("product_id", "text_hash")
    )
    todo = [pk for pk in texts if current.get(pk) != hashes[pk]]
    if not todo:
        return []
    vectors = embedder.embed([texts[pk] for pk in todo])
    now = timezone.now()
    return [
        model(
            product_id=pk,
            model_name=embedder.model_name,
            text_hash=hashes[pk],
            dimension=embedder.dimension,
            vector=vector_to_bytes(vector),
            updated_at=now,
        )
        for pk, vector in zip(todo, vectors, strict=True)
    ]


def product_vectors_save(model: type[Any], rows: Sequence[Any]) -> None:
    """Insert or replace each product's one vector row (from :func:`product_vectors_changed`)."""
    if rows:
        model.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["model_name", "text_hash", "dimension", "vector", "updated_at"],
        )


def product_embeddings_refresh(
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    chunk_size: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> RefreshCounts:
    """Embed every stale product whose text or model changed; clear the flags. Idempotent.

    ``full`` checks every product, not only flagged ones: the reindex job uses it, so a change
    of the text template or of a setting that no flag records is picked up too (hashing every
    product's text is cheap; only changed texts are embedded).

    A product edited while the sweep runs keeps its flag (its ``updated_at`` is newer than the
    sweep's start), so the next sweep picks the edit up: nothing is lost.
    """
    embedder = embedder or get_embedder()
    chunk_size = (
        chunk_size
        or settings.RECSITE_EMBED_CHUNK
        or (32_768 if embedder.device.startswith("cuda") else 2048)
    )
    started = time.perf_counter()
    sweep_started_at = timezone.now()
    products_mark_stale_for_model(model_name=embedder.model_name)
    stale = Product.objects.all() if full else Product.objects.filter(embedding_stale=True)
    counts = RefreshCounts(products=stale.count())
    last_pk = 0
    done = 0
    while True:
        rows = list(
            stale.filter(pk__gt=last_pk)
            .order_by("pk")
            .values("pk", "title", "description", "category", "brand", "tags")[:chunk_size]
        )
        if not rows:
            break
        last_pk = rows[-1]["pk"]
        texts = {row["pk"]: product_text(row) for row in rows}
        changed = product_vectors_changed(ProductEmbedding, texts, embedder=embedder)
        with transaction.atomic():
            product_vectors_save(ProductEmbedding, changed)
            Product.objects.filter(pk__in=list(texts), updated_at__lte=sweep_started_at).update(
                embedding_stale=False
            )
        counts.embedded += len(changed)
        counts.unchanged += len(texts) - len(changed)
        done += len(rows)
        if progress is not None:
            progress(done / counts.products if counts.products else 1.0)
    counts.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "Embedding sweep: %d stale, %d embedded, %d unchanged in %.1f s with %s on %s",
        counts.products,
        counts.embedded,
        counts.unchanged,
        counts.seconds,
        embedder.model_name,
        embedder.device,
    )
    return counts
