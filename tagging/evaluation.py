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
from django.conf import settings

from recommender.ml.embedding import Embedder, TransformerEmbedder
from recommender.ml.files import atomic_write
from recommender.ml.model_install import resolve_model
from recommender.ml.text import product_embedding_text
from recommender.models import Product
from recommender.services.embeddings import get_embedder

from .ml import EncoderVectors, EvaluationData, evaluate_taggers, label_index, tag_text

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _label_of(row: Mapping[str, Any], column: str) -> str:
    if column == "category":
        return str(row["category"] or "").strip()
    value = (row["attributes"] or {}).get(column)
    return str(value).strip() if value not in (None, "") else ""


def _encoder(name: str | None) -> Embedder:
    """The tagging encoder of the settings (``None``), or the named one (a registered model,
    ``all-MiniLM-L6-v2`` or a model directory), loaded like the settings' one."""
    if name is None:
        return get_embedder("tagging")
    if settings.RECSITE_EMBEDDER != "transformer":
        raise ValueError("--encoders: needs RECSITE_EMBEDDER=transformer")
    try:
        path = resolve_model(name, Path(settings.RECSITE_MODEL_DIR))
        return TransformerEmbedder(
            model_path=path,
            model_name=name if path is None or Path(path).name == name else None,
            device=settings.RECSITE_DEVICE,
            dtype=settings.RECSITE_EMBED_DTYPE,
            batch_size=settings.RECSITE_EMBED_BATCH_SIZE or None,
            max_length=settings.RECSITE_EMBED_MAX_TOKENS,
        )
    except FileNotFoundError as exc:
        raise ValueError(f"--encoders: {exc}") from exc


def _cache_file(cache: Path | None, encoder: str, several: bool) -> Path | None:
    if cache is None or not several:
        return cache
    return cache.with_name(f"{cache.stem}-{encoder}{cache.suffix or '.npz'}")


def _embed_cached(
    embedder: Embedder, texts: list[str], *, cache: Path | None, progress: Progress | None
) -> np.ndarray:
    """Embed ``texts``; with ``cache``, reuse vectors saved by an earlier run of the same texts."""
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
    encoders: tuple[str, ...] | None = None,
    target_precision: float | None = None,
    vectors_cache: Path | None = None,
    grids: dict[str, tuple[float, ...]] | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate zero-shot, supervised-on-embeddings, TF-IDF + LR and the stacked ensemble on
    one split, on each encoder of ``encoders`` (default: the tagging encoder of the settings).

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
    several = encoders is not None and len(encoders) > 1
    started = time.perf_counter()
    computed: list[tuple[str, np.ndarray, np.ndarray, str | None]] = []
    for name in encoders or (None,):
        embedder = _encoder(name)
        vectors = _embed_cached(
            embedder,
            texts,
            cache=_cache_file(vectors_cache, embedder.model_name, several),
            progress=progress,
        )
        label_vectors = np.asarray(embedder.embed([tag_text(n) for n in names]), np.float32)
        path = getattr(embedder, "model_path", None)
        computed.append((embedder.model_name, vectors, label_vectors, str(path) if path else None))
    embed_seconds = time.perf_counter() - started
    first = computed[0]
    data = EvaluationData(
        texts=texts,
        vectors=first[1],
        targets=targets,
        labels=names,
        label_vectors=first[2],
        encoder=first[0],
        others=[EncoderVectors(c[0], c[1], c[2]) for c in computed[1:]],
    )
    kwargs: dict[str, Any] = {} if methods is None else {"methods": methods}
    kwargs.update(grids or {})
    if target_precision is not None:
        kwargs["target_precision"] = target_precision
    if methods is not None and "finetune" in methods:
        if first[3] is None:
            raise ValueError("finetune: needs a transformer encoder (RECSITE_EMBEDDER)")
        kwargs["finetune_model_path"] = first[3]
    started = time.perf_counter()
    report = evaluate_taggers(data, test_size=test_size, seed=seed, log=log, **kwargs)
    report["dataset"] = {
        "labels_column": labels_column,
        "level": level,
        "products": len(texts),
        "classes": len(names),
        "text": "title. brand. description (never the label column or tags)",
        "model": first[0],
        "encoders": [c[0] for c in computed],
        "embed_seconds": round(embed_seconds, 1),
        "fit_and_score_seconds": round(time.perf_counter() - started, 1),
    }
    return report
