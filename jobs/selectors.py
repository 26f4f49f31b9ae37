"""Reads of jobs and builds. The one "latest ready build" lookup every app uses."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import QuerySet

from .choices import BuildStatus
from .models import ArtifactBuild, Job

B = TypeVar("B", bound=ArtifactBuild)


def builds_ready(model: type[B]) -> QuerySet[B]:
    """READY builds of ``model``, newest first: the order readers, pruning and rollback use.

    A build's ``finished_at`` is when it was published (a rollback sets it again), so the first
    one is the build that serves.
    """
    return model._default_manager.filter(status=BuildStatus.READY).order_by("-finished_at", "-pk")


def build_latest_ready(model: type[B], **filters: Any) -> B | None:
    """The newest READY build of ``model`` (matching ``filters``, if any): the one that serves."""
    return builds_ready(model).filter(**filters).first()


def build_previous_ready(model: type[B]) -> B | None:
    """The READY build published before the one that serves: where a rollback goes back to."""
    return builds_ready(model)[1:2].first()


def build_get(model: type[B], *, pk: int) -> B | None:
    return model._default_manager.filter(pk=pk).first()


def job_list() -> QuerySet[Job]:
    return Job.objects.select_related("triggered_by").order_by("-created_at", "-id")


def job_get(*, pk: int) -> Job | None:
    return job_list().filter(pk=pk).first()


def job_watched(*, param: str) -> Job | None:
    """The job a dashboard page follows from its ``?job=`` parameter (None unless it names one)."""
    return job_get(pk=int(param)) if param.isdigit() else None
