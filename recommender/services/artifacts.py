"""Housekeeping shared by the immutable build artifacts (vector index builds, engine builds)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from recommender.choices import BuildStatus
from recommender.models import EngineBuild, IndexBuild


def builds_prune(
    *,
    model: type[IndexBuild] | type[EngineBuild],
    delete_file: Callable[[str], None],
    keep: int | None = None,
) -> int:
    """Delete the files of READY builds beyond the newest ``keep`` and mark them RETIRED.

    Returns how many were retired. The newest ones stay on disk for rollback.
    """
    keep = settings.RECSITE_INDEX_KEEP if keep is None else keep
    old = model.objects.filter(status=BuildStatus.READY).order_by("-finished_at", "-pk")[keep:]
    retired = 0
    for build in old:
        delete_file(build.path)
        model.objects.filter(pk=build.pk).update(status=BuildStatus.RETIRED)
        retired += 1
    return retired


def build_mark_failed(
    *, model: type[IndexBuild] | type[EngineBuild], pk: int, exc: BaseException
) -> None:
    """Record why a build failed; its file was never published, so the previous one serves."""
    model.objects.filter(pk=pk).update(
        status=BuildStatus.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
    )
