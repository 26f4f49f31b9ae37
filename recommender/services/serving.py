"""Serving artifacts for a process that forks its web workers (the gunicorn master).

The master calls :func:`serving_preload` before it forks, so every worker inherits the loaded
vector index and engine (copy-on-write pages: one physical copy for all of them), and again when
it is told that newer builds exist. A small watcher process polls :func:`serving_builds_newest`,
fetches new builds into this host's cache (:func:`serving_prefetch`, a no-op for the filesystem
store) and then tells the master. ``recsite/gunicorn_serving.py`` wires this into gunicorn;
``docs/deployment.md`` describes the memory model.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections

from jobs.services.artifact_store import artifact_store
from jobs.services.artifacts import artifact_local
from recommender.ml.embedding import (
    HashingEmbedder,
    default_model_name,  # The transformer's public name, without loading the model.
    model_dir,
)
from recommender.models import EngineBuild, IndexBuild
from recommender.selectors.tuning import engine_build_serving

from .embeddings import encoder_model_path
from .index import INDEX_KIND, index_build_latest_ready, serving_index, serving_index_recheck
from .recommendations import (
    ENGINE_KIND,
    EngineNotReady,
    serving_engine,
    serving_engine_recheck,
)

logger = logging.getLogger(__name__)

Builds = dict[str, int | None]


def configured_model_name() -> str:
    """The embedding model's name as configured, without loading the model (and torch): the
    master must never start torch's thread pools before forking."""
    if settings.RECSITE_EMBEDDER == "hashing":
        return HashingEmbedder(dimension=settings.RECSITE_HASHING_DIMENSION).model_name
    return default_model_name(model_dir(encoder_model_path("index")))


def serving_builds_newest() -> Builds:
    """The newest READY index build (of the configured model) and engine build, by id."""
    index = index_build_latest_ready(model_name=configured_model_name())
    engine, _ = engine_build_serving()
    return {INDEX_KIND: index.pk if index else None, ENGINE_KIND: engine.pk if engine else None}


def serving_preload() -> Builds:
    """Load (or reload) the newest index and engine builds into this process; returns their
    ids. Raises ArtifactStoreError when the store cannot be used.

    The database connections are closed afterwards: a forked worker must open its own.
    """
    artifact_store().check()
    try:
        serving_index_recheck()
        index = serving_index(model_name=configured_model_name())
        serving_engine_recheck()
        try:
            engine_id: int | None = serving_engine().build_id
        except EngineNotReady:
            engine_id = None
    finally:
        connections.close_all()
    loaded = {INDEX_KIND: index.build_id, ENGINE_KIND: engine_id}
    logger.info("Preloaded serving artifacts: index build %s, engine build %s",
                loaded[INDEX_KIND], loaded[ENGINE_KIND])  # fmt: skip
    return loaded


def serving_prefetch(builds: Builds) -> None:
    """Fetch these builds into this host's cache (object storage), so loading them is local."""
    for kind, model in ((INDEX_KIND, IndexBuild), (ENGINE_KIND, EngineBuild)):
        build_id = builds.get(kind)
        if build_id is None:
            continue
        build = model.objects.filter(pk=build_id).only("path").first()
        if build is not None and build.path:
            artifact_local(model=model, kind=kind, location=build.path)
