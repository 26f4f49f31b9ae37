"""Auto-tagging runs: score products against the leaf tags, store suggestions, auto-accept the
confident ones.

The one rule auto-tagging never breaks: a row a merchant decided (accepted or rejected) keeps
its status, decider and time whatever later runs suggest. A run only creates rows, refreshes
the rows it owns (pending suggestions, and its own auto-accepted ones: ``decided_by_model``),
and drops the ones it no longer suggests. A suggestion is auto-accepted when it is the
product's top tag and its confidence reaches the tag's threshold (:mod:`.taggers`); the next
run may move it back to pending, a merchant's decision ends that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.choices import JobState
from jobs.models import Job
from recommender.models import Product, ProductEmbedding
from recommender.services.embeddings import get_embedder

from .. import ml
from ..models import ProductTag, ProductTagSource, ProductTagStatus, Tag, TaggingJobKind
from ..selectors import AUTO_SOURCES, tags_leaf
from .taggers import TaggingCounts, taggers_build
from .vectors import tagging_vectors, tagging_vectors_changed_since

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]

DEFAULT_THRESHOLD = 0.3
DEFAULT_TOP_K = 3
# Products scored per step: bounds memory (products x tags probabilities) and paces progress.
CHUNK = 4096


def _last_tagging_scored_from() -> datetime | None:
    """When the last successful tag job read the product vectors (None: no such job).

    Not the job's start: its own embed step embeds new products after that, and the tag step
    then scores them."""
    job = (
        Job.objects.filter(kind=TaggingJobKind.TAG, state=JobState.SUCCEEDED)
        .order_by("-started_at")
        .only("started_at", "counts")
        .first()
    )
    if job is None:
        return None
    recorded = (job.counts.get("tag") or {}).get("scored_from")
    return datetime.fromisoformat(recorded) if recorded else job.started_at


def tagging_new_reasons() -> tuple[str, ...]:
    """Why a tagging job over new and edited products (``only_new``) would do something now;
    empty when it would not: no vocabulary, a tagging job already queued or running, or no
    product embedded, edited or added since the last one read the vectors. Beat asks this
    nightly (``tag-new-nightly``)."""
    if not Tag.objects.filter(children__isnull=True).exists():
        return ()
    busy = [JobState.QUEUED, JobState.RUNNING]
    if Job.objects.filter(kind=TaggingJobKind.TAG, state__in=busy).exists():
        return ()
    since = _last_tagging_scored_from()
    if since is None:
        return ("no tagging job has run yet",) if Product.objects.exists() else ()
    reasons = []
    model_name = get_embedder().model_name
    embedded = ProductEmbedding.objects.filter(model_name=model_name, updated_at__gte=since).count()
    if embedded:
        products = "1 product" if embedded == 1 else f"{embedded} products"
        reasons.append(f"{products} embedded anew since the last tagging job")
    waiting = Product.objects.filter(embedding_stale=True).count()
    if waiting:
        products = "1 product awaits" if waiting == 1 else f"{waiting} products await"
        reasons.append(f"{products} embedding")
    return tuple(reasons)


def tagging_run(
    *,
    only_new: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    top_k: int = DEFAULT_TOP_K,
    seed: int = 0,
    progress: Progress | None = None,
) -> TaggingCounts:
    """Score active products against the leaf tags and store the suggestions as pending.

    ``only_new``: only products whose vector changed since the last successful tagging job
    started (new or edited products); every product when no job succeeded yet. Decided rows
    are never touched; pending rows of a scored product that are no longer suggested are
    removed.
    """
    started = time.perf_counter()
    counts = TaggingCounts()
    tags = tags_leaf()
    counts.tags = len(tags)
    counts.scored_from = timezone.now().isoformat()
    ids, vectors, counts.encoder = tagging_vectors()
    if not tags or not len(ids):
        counts.seconds = round(time.perf_counter() - started, 3)
        if progress is not None:
            progress(1.0)
        return counts
    built = taggers_build(tags, ids, vectors, counts, seed)
    todo: np.ndarray = np.arange(len(ids))
    since = _last_tagging_scored_from() if only_new else None
    if since is not None:
        # New products and edited ones got their vector after the last job read the vectors; a
        # product scored then and left without a suggestion is not scored again until it
        # changes.
        changed = tagging_vectors_changed_since(since)
        todo = np.array([i for i, pk in enumerate(ids) if int(pk) in changed], dtype=np.int64)
    counts.products = len(todo)
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        proba = built.score(chunk)
        suggestions = ml.suggest(proba, threshold=threshold, top_k=top_k)
        # A product a merchant reviewed keeps its other suggestions for review: auto-accept
        # tags the products nobody looked at.
        looked_at = set(
            ProductTag.objects.filter(
                product_id__in=[int(ids[i]) for i in chunk], decided_by_model=False
            )
            .exclude(status=ProductTagStatus.PENDING)
            .values_list("product_id", flat=True)
        )
        top = {s.row: s for s in reversed(suggestions)}  # Each product's first (best) one.
        _store(
            product_ids=[int(ids[i]) for i in chunk],
            suggestions=[
                (
                    int(ids[chunk[s.row]]),
                    tags[s.tag].pk,
                    s.confidence,
                    ProductTagSource.SUPERVISED
                    if built.supervised[s.tag]
                    else ProductTagSource.ZERO_SHOT,
                    top[s.row] is s
                    and s.confidence >= built.thresholds[s.tag]
                    and int(ids[chunk[s.row]]) not in looked_at,
                )
                for s in suggestions
            ],
            model_version=counts.model_version,
            counts=counts,
        )
        if progress is not None:
            progress(min(start + CHUNK, len(todo)) / len(todo))
    if progress is not None and not len(todo):
        progress(1.0)
    counts.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "Auto-tagging: %d products, %d tags, %d suggestions (%d auto-accepted, %d decided pairs "
        "kept) in %.1f s",
        counts.products,
        counts.tags,
        counts.suggested,
        counts.auto_accepted,
        counts.kept_decisions,
        counts.seconds,
    )
    return counts


@transaction.atomic
def _store(
    *,
    product_ids: list[int],
    suggestions: list[tuple[int, int, float, str, bool]],
    model_version: str,
    counts: TaggingCounts,
) -> None:
    """Write one chunk's suggestions: (product, tag, confidence, source, auto-accept)."""
    existing: dict[tuple[int, int], tuple[int, str, str, bool]] = {
        (p, t): (pk, status, source, by_model)
        for pk, p, t, status, source, by_model in ProductTag.objects.filter(
            product_id__in=product_ids
        ).values_list("pk", "product_id", "tag_id", "status", "source", "decided_by_model")
    }
    now = timezone.now()
    fresh: list[ProductTag] = []
    accept: list[int] = []
    unaccept: list[int] = []
    suggested_pairs = set()
    for product_id, tag_id, confidence, source, auto in suggestions:
        suggested_pairs.add((product_id, tag_id))
        current = existing.get((product_id, tag_id))
        if current is not None and current[1] != ProductTagStatus.PENDING and not current[3]:
            counts.kept_decisions += 1  # A merchant's decision: final.
            continue
        fresh.append(
            ProductTag(
                product_id=product_id,
                tag_id=tag_id,
                status=ProductTagStatus.ACCEPTED if auto else ProductTagStatus.PENDING,
                source=source,
                confidence=round(confidence, 6),
                model_version=model_version,
                decided_at=now if auto else None,
                auto_accepted=auto,
                decided_by_model=auto,
            )
        )
        if current is not None:
            (accept if auto else unaccept).append(current[0])
        counts.auto_accepted += int(auto)
    # The upsert never names status or the decision fields: even a row a merchant decided
    # between the read above and this write keeps the decision. New rows are inserted with
    # their status; existing rows the run owns change status below, filtered on ownership.
    ProductTag.objects.bulk_create(
        fresh,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["product", "tag"],
        update_fields=["source", "confidence", "model_version", "updated_at"],
    )
    owned = Q(status=ProductTagStatus.PENDING) | Q(decided_by_model=True)
    ProductTag.objects.filter(owned, pk__in=accept).update(
        status=ProductTagStatus.ACCEPTED,
        decided_by=None,
        decided_at=now,
        auto_accepted=True,
        decided_by_model=True,
    )
    ProductTag.objects.filter(pk__in=unaccept, decided_by_model=True).update(
        status=ProductTagStatus.PENDING,
        decided_at=None,
        auto_accepted=False,
        decided_by_model=False,
    )
    counts.suggested += len(fresh)
    stale = [
        pk
        for pair, (pk, status, source, by_model) in existing.items()
        if (status == ProductTagStatus.PENDING or by_model)
        and source in AUTO_SOURCES
        and pair not in suggested_pairs
    ]
    # Filtered on ownership again: a row decided meanwhile is not a stale suggestion.
    counts.dropped += ProductTag.objects.filter(owned, pk__in=stale).delete()[0]
