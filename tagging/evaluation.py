"""Offline evaluation of the taggers on an imported catalogue with a ground-truth column.

The texts the models see never contain the ground truth: a product's text is its title, brand
and description, without its category or tags (the label column usually is the category, and
imported tags often repeat it). Product vectors are therefore computed here, from those texts,
rather than read from the stored embeddings (whose text includes the category).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recommender.ml.files import atomic_write
from recommender.ml.text import product_embedding_text
from recommender.models import Product
from recommender.services.embeddings import get_embedder

from .ml import EvaluationData, evaluate_taggers, label_index, tag_text
from .services import encoder_model_path

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _label_of(row: Mapping[str, Any], column: str) -> str:
    if column == "category":
        return str(row["category"] or "").strip()
    value = (row["attributes"] or {}).get(column)
    return str(value).strip() if value not in (None, "") else ""


def _embed_cached(texts: list[str], *, cache: Path | None, progress: Progress | None) -> np.ndarray:
    """Embed ``texts``; with ``cache``, reuse vectors saved by an earlier run of the same texts."""
    embedder = get_embedder()
    digest = hashlib.sha256(embedder.model_name.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x00")
    key = digest.hexdigest()
    if cache is not None and cache.exists():
        saved = np.load(cache, allow_pickle=False)
        if str(saved["key"]) == key:
            logger.info("Reusing %d cached vectors from %s", len(texts), cache)
            return np.asarray(saved["vectors"], dtype=np.float32)
    vectors = embedder.embed(texts, progress=progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache) as f:
            np.savez(f, key=np.array(key), vectors=vectors)
    return np.asarray(vectors, dtype=np.float32)


def tagging_evaluate(
    *,
    labels_column: str,
    test_size: float,
    seed: int,
    level: int | None = None,
    methods: tuple[str, ...] | None = None,
    vectors_cache: Path | None = None,
    grids: dict[str, tuple[float, ...]] | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate zero-shot, supervised-on-embeddings and TF-IDF + LR on one split.

    ``level`` keeps only the first ``level`` segments of a ``a/b/c`` label (1: department of
    ``department/aisle``); None keeps the whole label.
    """
    rows = list(
        Product.objects.filter(is_active=True)
        .order_by("pk")
        .values("pk", "title", "brand", "description", "category", "attributes")
    )
    texts, labels = [], []
    for row in rows:
        label = _label_of(row, labels_column)
        if not label:
            continue
        if level is not None:
            label = "/".join(label.split("/")[:level])
        text = product_embedding_text(
            title=row["title"], brand=row["brand"], description=row["description"]
        )
        if text:
            texts.append(text)
            labels.append(label)
    if not texts:
        raise ValueError(f"no active product has a value in the label column {labels_column!r}")
    names, targets = label_index(labels)
    started = time.perf_counter()
    vectors = _embed_cached(texts, cache=vectors_cache, progress=progress)
    embed_seconds = time.perf_counter() - started
    label_vectors = np.asarray(get_embedder().embed([tag_text(n) for n in names]), np.float32)
    data = EvaluationData(
        texts=texts, vectors=vectors, targets=targets, labels=names, label_vectors=label_vectors
    )
    kwargs: dict[str, Any] = {} if methods is None else {"methods": methods}
    kwargs.update(grids or {})
    if methods is not None and "finetune" in methods:
        kwargs["finetune_model_path"] = str(encoder_model_path())
    started = time.perf_counter()
    report = evaluate_taggers(data, test_size=test_size, seed=seed, log=log, **kwargs)
    report["dataset"] = {
        "labels_column": labels_column,
        "level": level,
        "products": len(texts),
        "classes": len(names),
        "text": "title. brand. description (never the label column or tags)",
        "model": get_embedder().model_name,
        "embed_seconds": round(embed_seconds, 1),
        "fit_and_score_seconds": round(time.perf_counter() - started, 1),
    }
    return report
