"""Housekeeping shared by the immutable build artifacts (vector index builds, engine builds,
churn models): every subclass of :class:`jobs.models.ArtifactBuild`.

Every kind of build publishes, reads and prunes its files the same way, through the configured
artifact store (:mod:`jobs.services.artifact_store`):

- :func:`artifact_publishing` gives the writer a local path for the build's main file, publishes
  the file set when the writer is done, and removes it if the writer fails. The caller then marks
  the row READY with the returned location: that row is the commit point readers go through.
- :func:`artifact_local` turns a READY row's location into a local path to load or memory-map
  (downloading the build into this host's cache once, for object storage).
- :func:`builds_prune` retires READY builds beyond the newest ``RECSITE_INDEX_KEEP``, deletes
  their files from the store, sweeps files no live build owns (failed or killed builds) and
  trims this host's cache to the live builds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from jobs.choices import BuildStatus
from jobs.models import ArtifactBuild
from jobs.selectors import builds_ready

from .artifact_store import FilesystemStore, artifact_store, build_base, build_pk_of

logger = logging.getLogger(__name__)

BuildModel = type[ArtifactBuild]


@dataclass
class Publication:
    """Where a writer saves a build's main file, and where the published build is."""

    main: Path
    location: str = ""  # Set once published: what the build row records.


@contextmanager
def artifact_publishing(*, kind: str, name: str) -> Iterator[Publication]:
    """Save a build's files at ``publication.main`` (and beside it, named after it) inside the
    block; they are published when it ends, or removed if it raises.

    ``name`` must be unique to the build (``artifact_store.unique_name``): published files are
    never written again.
    """
    store = artifact_store()
    directory = store.staging_dir(kind)
    publication = Publication(main=directory / name)
    try:
        yield publication
        publication.location = store.publish(publication.main, kind=kind)
    except BaseException:
        FilesystemStore.remove_build_files(directory, build_base(name))
        raise


def artifact_local(*, model: BuildModel, kind: str, location: str) -> Path:
    """A local path of the build's main file (downloaded into the cache if need be)."""
    store = artifact_store()
    path = store.local(location)
    store.cache_prune(kind, lambda: _live_pks(model))
    return path


def _live_pks(model: BuildModel) -> set[int]:
    statuses = [BuildStatus.BUILDING, BuildStatus.READY]
    return set(model._default_manager.filter(status__in=statuses).values_list("pk", flat=True))


def builds_prune(*, model: BuildModel, kind: str, keep: int | None = None) -> int:
    """Retire READY builds beyond the newest ``keep`` and delete their files from the store;
    then remove files no live build owns and trim this host's cache. Returns how many builds
    were retired. The newest ones stay for rollback.
    """
    keep = settings.RECSITE_INDEX_KEEP if keep is None else keep
    store = artifact_store()
    old = builds_ready(model)[keep:]
    retired = 0
    for build in old:
        # Retired first: a reader that still finds the row READY must not find its files gone.
        model._default_manager.filter(pk=build.pk).update(status=BuildStatus.RETIRED)
        if build.path:
            store.delete(build.path, kind=kind)
        retired += 1
    artifacts_sweep(model=model, kind=kind)
    store.cache_prune(kind, lambda: _live_pks(model))
    return retired


def artifacts_sweep(*, model: BuildModel, kind: str) -> int:
    """Delete stored files of builds that are neither READY nor BUILDING (failed, killed,
    retired); returns how many files. The store is listed before the rows are read, so a build
    started meanwhile is always seen as live."""
    store = artifact_store()
    names = store.names(kind)
    live = _live_pks(model)
    doomed = [n for n in names if (pk := build_pk_of(n)) is not None and pk not in live]
    if doomed:
        store.remove(kind, doomed)
        logger.info("Removed %d %s files of builds no longer live", len(doomed), kind)
    return len(doomed)


def build_mark_failed(*, model: BuildModel, pk: int, exc: BaseException) -> None:
    """Record why a build failed; its file was never published, so the previous one serves."""
    model._default_manager.filter(pk=pk).update(
        status=BuildStatus.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
    )
