"""The versioned vector index: building immutable builds, and serving the newest one.

A build reads the stored vectors of active products, builds an hnswlib graph, checks its
recall@10 against exact search on a sample, saves it under a name of its own and publishes it to
the artifact store (``jobs.services.artifacts``), and only then marks its
:class:`IndexBuild` row READY. Serving processes load the newest READY build (rechecking every
``RECSITE_INDEX_REFRESH_SECONDS``, so no restart is needed) and search products embedded since
that build exactly, in a side buffer. Results are filtered against the database, so an inactive
or deleted product never comes back. Under gunicorn with preloading, workers inherit the build
the master loaded and wait for the master to roll in a newer one (``serving_mode``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from jobs.choices import BuildStatus
from jobs.models import Job
from jobs.selectors import build_latest_ready
from jobs.services.artifact_store import ArtifactStoreError, unique_name
from jobs.services.artifacts import (
    artifact_local,
    artifact_publishing,
    build_mark_failed,
    builds_prune,
)
from recommender.caching import Reloading
from recommender.ml.engine import EXACT_SEARCH_MAX, AnnSearch, Found
from recommender.ml.vector_index import (
    ExactBuffer,
    QueryResult,
    VectorIndex,
    VectorIndexFileError,
    query_with_buffer,
)
from recommender.models import IndexBuild, Product, ProductEmbedding
from recommender.selectors.catalog import products_awaiting_embedding

from .budget import index_build_estimate
from .embeddings import embeddings_matrix, embeddings_query, get_embedder
from .serving_mode import serving_forgotten, serving_keep_inherited, serving_noted

logger = logging.getLogger(__name__)

SELF_CHECK_SAMPLE = 1000
# The artifact store's folder (or key prefix) of index builds.
INDEX_KIND = "index"
# Loading a newer build can fail (a file pruned meanwhile, a store that does not answer): the
# build already loaded then keeps serving, and the next recheck tries again.
_LOAD_ERRORS = (ArtifactStoreError, VectorIndexFileError, OSError)


def index_dir() -> Path:
    directory = Path(settings.RECSITE_INDEX_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def vector_index_build(
    *,
    model_name: str | None = None,
    job: Job | None = None,
    progress: Callable[[float], None] | None = None,
) -> IndexBuild:
    """Build, self-check and publish a new index of every active product's vector."""
    model_name = model_name or get_embedder().model_name
    build = IndexBuild.objects.create(
        status=BuildStatus.BUILDING,
        model_name=model_name,
        m=settings.RECSITE_INDEX_M,
        ef_construction=settings.RECSITE_INDEX_EF_CONSTRUCTION,
        ef_search=settings.RECSITE_INDEX_EF_SEARCH,
        job=job,
    )
    started = time.perf_counter()
    try:
        # Refused before anything big is read when it would not fit (docs/scale.md).
        stored = embeddings_query(model_name=model_name)
        dimension = stored.values_list("dimension", flat=True).first() or 0
        index_build_estimate(items=stored.count(), dimension=dimension, m=build.m).check()
        ids, vectors = embeddings_matrix(model_name=model_name)
        if progress:
            progress(0.2)
        if len(ids) == 0:
            raise ValueError(
                f"no embedded active products for model {model_name!r}: embed products first"
            )
        index = VectorIndex.build(
            ids=ids,
            vectors=vectors,
            m=build.m,
            ef_construction=build.ef_construction,
            ef_search=build.ef_search,
        )
        if progress:
            progress(0.8)
        recall = index.self_check(sample_size=SELF_CHECK_SAMPLE, k=10, seed=0)
        name = unique_name("build", build.pk, ".json")
        with artifact_publishing(kind=INDEX_KIND, name=name) as publication:
            index.save(publication.main)
    except Exception as exc:
        build_mark_failed(model=IndexBuild, pk=build.pk, exc=exc)
        raise
    build.status = BuildStatus.READY
    build.path = publication.location  # The commit point: readers see the build from now on.
    build.dimension = index.dim
    build.item_count = len(index)
    build.self_check_recall = round(recall, 4)
    build.build_seconds = round(time.perf_counter() - started, 3)
    build.finished_at = timezone.now()
    build.save()
    index_builds_prune()
    if progress:
        progress(1.0)
    logger.info(
        "Index build %s: %d vectors, dim %d, recall@10 %.4f, %.1f s",
        build.pk,
        build.item_count,
        build.dimension,
        recall,
        build.build_seconds,
    )
    return build


def index_builds_prune(*, keep: int | None = None) -> int:
    """Remove the files of READY index builds beyond the newest ``keep``; returns how many."""
    return builds_prune(model=IndexBuild, kind=INDEX_KIND, keep=keep)


def index_build_rollback(*, build: IndexBuild) -> IndexBuild:
    """Serve an earlier READY build again by making it the newest."""
    if build.status != BuildStatus.READY:
        raise ValueError(f"build {build.pk} is {build.status}; only a READY build can be restored")
    build.finished_at = timezone.now()
    build.save(update_fields=["finished_at"])
    return build


def index_is_current(*, model_name: str) -> bool:
    """True when the newest build is of this model and no product awaits embedding.

    Products embedded since that build are still served (through the side buffer); this only
    says whether a reindex would change anything a full sweep would not.
    """
    latest = index_build_latest_ready()
    if latest is None or latest.model_name != model_name:
        return False
    return not products_awaiting_embedding(model_name=model_name).exists()


def index_build_latest_ready(*, model_name: str | None = None) -> IndexBuild | None:
    """The newest READY build (of ``model_name``, if given): the one serving processes load."""
    filters = {} if model_name is None else {"model_name": model_name}
    return build_latest_ready(IndexBuild, **filters)


def index_build_load(build: IndexBuild, *, ef_search: int | None = None) -> VectorIndex:
    """``build``'s graph from this host's copy of its files, searched at its own ``ef_search``
    (or at ``ef_search``: a benchmark's other breadth)."""
    path = artifact_local(model=IndexBuild, kind=INDEX_KIND, location=build.path)
    return VectorIndex.load(path, ef_search=build.ef_search if ef_search is None else ef_search)


# Serving ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServingIndex:
    """What a process searches: a READY build plus vectors embedded since it started."""

    build_id: int | None
    model_name: str
    index: VectorIndex | None
    buffer: ExactBuffer | None
    buffer_marker: tuple[object, int]
    build: IndexBuild | None = None

    def query(
        self, vectors: np.ndarray, *, k: int, exclude: Collection[int] = ()
    ) -> list[QueryResult]:
        if self.buffer is None:
            return [QueryResult.empty() for _ in range(np.atleast_2d(vectors).shape[0])]
        if self.index is None:
            return self.buffer.query(vectors, k=k, exclude=exclude)
        return query_with_buffer(
            index=self.index, buffer=self.buffer, vectors=vectors, k=k, exclude=exclude
        )

    def search(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """``vector``'s ``n`` nearest products as (product id, cosine)."""
        return self.query(np.asarray(vector, dtype=np.float32), k=n)[0].pairs()

    # An engine's ``ann`` (``AnnSearch``): the index itself, searched one vector at a time or,
    # for a customer's interests, all in one query (``search_many``).
    __call__ = search

    def many(self, vectors: np.ndarray, n: int) -> Found:
        """The ``n`` nearest products of each row of ``vectors`` as (ids, cosines) arrays."""
        return [(r.ids, r.scores) for r in self.query(np.asarray(vectors, np.float32), k=n)]


# The index this process serves, by embedding model (one held at a time), checked every
# RECSITE_INDEX_REFRESH_SECONDS.
_serving: Reloading[str, ServingIndex] = Reloading(
    lambda: settings.RECSITE_INDEX_REFRESH_SECONDS, max_entries=1
)


def _embedded_since(model_name: str, build: IndexBuild | None) -> QuerySet[ProductEmbedding]:
    newer = ProductEmbedding.objects.filter(model_name=model_name)
    if build is not None:
        newer = newer.filter(updated_at__gt=build.started_at)
    return newer


def _buffer_marker(model_name: str, build: IndexBuild | None) -> tuple[object, int]:
    """A marker of the vectors embedded since ``build`` started: it changes when they do."""
    summary = _embedded_since(model_name, build).aggregate(
        latest=Max("updated_at"), count=Count("pk")
    )
    return summary["latest"], summary["count"]


def _build_to_serve(current: ServingIndex | None, newest: IndexBuild | None) -> IndexBuild | None:
    """The newest READY build, or the inherited one while the master rolls a newer one in."""
    if current is None:
        return newest
    newest_id = newest.pk if newest else None
    if serving_keep_inherited(INDEX_KIND, current=current.build_id, newest=newest_id):
        return current.build
    return newest


def _load_serving(
    current: ServingIndex | None,
    model_name: str,
    build: IndexBuild | None,
    marker: tuple[object, int],
) -> ServingIndex:
    index = None
    if build is not None:
        if current is not None and current.build_id == build.pk:
            index = current.index  # Same build: keep the graph already in memory.
        else:
            index = index_build_load(build)
    ids, vectors = embeddings_matrix(
        model_name=model_name,
        product_ids=list(_embedded_since(model_name, build).values_list("product_id", flat=True)),
        active_only=False,
    )
    if len(ids):
        buffer = ExactBuffer(ids=ids, vectors=vectors)
    elif index is not None:
        buffer = ExactBuffer.empty(dim=index.dim)
    else:
        buffer = None
    return ServingIndex(
        build_id=build.pk if build else None,
        model_name=model_name,
        index=index,
        buffer=buffer,
        buffer_marker=marker,
        build=build,
    )


def serving_index(*, model_name: str | None = None) -> ServingIndex:
    """The index this process serves, reloaded when a newer build or new vectors exist.

    At most one check (two small queries) per ``RECSITE_INDEX_REFRESH_SECONDS`` per process; a
    reload happens only when the build to serve or the set of newer vectors changed. If a newer
    build cannot be loaded, the one already loaded keeps serving (logged; retried at the next
    check).
    """
    model = model_name or get_embedder().model_name
    serving = _serving.get(model, lambda current: _serving_reloaded(current, model))
    assert serving is not None  # _serving_reloaded always gives an index (maybe empty).
    return serving


def _serving_reloaded(current: ServingIndex | None, model_name: str) -> ServingIndex:
    """``current`` (the index held for ``model_name``) unless the build to serve or the set of
    newer vectors changed; then the index loaded anew, or ``current`` if that fails."""
    build = _build_to_serve(current, index_build_latest_ready(model_name=model_name))
    marker = _buffer_marker(model_name, build)
    build_id = build.pk if build else None
    if current is not None and current.build_id == build_id and current.buffer_marker == marker:
        return current
    try:
        loaded = _load_serving(current, model_name, build, marker)
    except _LOAD_ERRORS:
        if current is None:
            raise
        logger.exception(
            "Cannot load index build %s; build %s keeps serving", build_id, current.build_id
        )
        return current
    serving_noted(INDEX_KIND, loaded.build_id)
    return loaded


def serving_index_search(model_name: str) -> LazyIndexSearch:
    """The serving index as an engine's ``ann`` search, loaded at the first query only (a fit
    that asks nothing of it never loads it)."""
    return LazyIndexSearch(model_name)


@dataclass(frozen=True, slots=True)
class LazyIndexSearch:
    """The serving index of ``model_name`` as an engine's ``ann``, looked up at each query."""

    model_name: str

    def __call__(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        return serving_index(model_name=self.model_name).search(vector, n)

    def many(self, vectors: np.ndarray, n: int) -> Found:
        return serving_index(model_name=self.model_name).many(vectors, n)


def validation_search(*, items: int, model_name: str) -> AnnSearch | None:
    """The search an engine fitted offline for a sample of customers (automatic tuning, the
    learned reranker, the sequential gate, the tuning page's sample) generates their candidates
    with: the serving index for a catalogue of more than ``EXACT_SEARCH_MAX`` products, None
    (the engine's exact search) below. Without it such an engine builds an hnswlib index of its
    own over the whole catalogue, which repeats the reindex's work (about 400 s at a million
    products) for a few thousand queries."""
    return serving_index(model_name=model_name) if items > EXACT_SEARCH_MAX else None


def serving_index_recheck() -> None:
    """Make this process's next :func:`serving_index` call look for a newer build at once."""
    _serving.recheck()


def serving_index_reset() -> None:
    """Forget the loaded index (tests, and after a rollback in this process)."""
    _serving.forget(then=lambda: serving_forgotten(INDEX_KIND))


def nearest_active_products(
    *, vector: np.ndarray, k: int, exclude: Collection[int] = ()
) -> list[tuple[Product, float]]:
    """The ``k`` active products nearest to ``vector``, best first, with cosine scores."""
    serving = serving_index()
    # Over-fetch: some neighbours may have been deactivated or deleted since the build.
    fetch = k + 16
    result = serving.query(np.asarray(vector, dtype=np.float32), k=fetch, exclude=exclude)[0]
    pairs = result.pairs()
    active = Product.objects.filter(pk__in=[pk for pk, _ in pairs], is_active=True).in_bulk()
    ranked = [(active[pk], score) for pk, score in pairs if pk in active]
    if len(ranked) < k and len(pairs) == fetch:
        # Many stale neighbours: exclude them and ask again, exactly enough more.
        gone = {pk for pk, _ in pairs if pk not in active}
        more = nearest_active_products(vector=vector, k=k, exclude={*exclude, *gone})
        seen = {p.pk for p, _ in ranked}
        ranked.extend((p, s) for p, s in more if p.pk not in seen)
    return ranked[:k]
