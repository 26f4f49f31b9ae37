"""Reads behind the tuning and evaluation pages."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import OuterRef, Subquery

from jobs.choices import JobState
from jobs.models import Job
from jobs.selectors import builds_ready
from recommender.choices import JobKind
from recommender.models import (
    Customer,
    EngineBuild,
    EvaluationRun,
    RecommendationConfig,
    SequentialBuild,
)
from recommender.pseudonyms import customer_id_lookups


def customers_most_active(*, limit: int) -> list[Customer]:
    """The customers with the most events (ties: the older customer first), from the event
    counts maintained at ingestion (``CustomerActivity``): a top-N over one row per customer,
    not a count of every event."""
    return list(
        Customer.objects.filter(activity__events__gt=0).order_by("-activity__events", "pk")[:limit]
    )


def customers_by_external_ids(*, external_ids: Sequence[str]) -> dict[str, Customer]:
    """Keyed by the ids given (hashed for the lookup when ids are pseudonymous)."""
    wanted = {s: e for e in external_ids for s in customer_id_lookups(e)}
    found = Customer.objects.filter(external_id__in=list(wanted))
    return {wanted[c.external_id]: c for c in found}


def evaluation_run_list(*, limit: int = 200) -> list[EvaluationRun]:
    """The newest runs, newest first."""
    return list(
        EvaluationRun.objects.select_related("created_by", "job").order_by("-created_at", "-id")[
            :limit
        ]
    )


def evaluation_job_current() -> Job | None:
    """The newest evaluate job that is queued or running, if any."""
    return (
        Job.objects.filter(kind=JobKind.EVALUATE, state__in=[JobState.QUEUED, JobState.RUNNING])
        .order_by("-created_at", "-id")
        .first()
    )


def engine_build_serving() -> tuple[EngineBuild | None, int | None]:
    """The newest READY engine build and the active configuration version, in one query (the
    serving path asks for both every few seconds).

    The build also carries ``sequential_location``: the location of the newest READY
    sequential build for the same vectors when that build is enabled (it raised the hybrid on
    validation), else None (:func:`sequential_location_of`)."""
    active = RecommendationConfig.objects.filter(is_active=True).values("version")[:1]
    newest_sequential = builds_ready(SequentialBuild).filter(model_name=OuterRef("model_name"))
    build = (
        builds_ready(EngineBuild)
        .annotate(
            active_version=Subquery(active),
            sequential_path=Subquery(newest_sequential.values("path")[:1]),
            sequential_enabled=Subquery(newest_sequential.values("enabled")[:1]),
        )
        .first()
    )
    if build is None:
        return None, None
    return build, build.active_version


def sequential_location_of(build: EngineBuild) -> str | None:
    """The sequential build to serve with ``build`` as :func:`engine_build_serving` read it."""
    path = getattr(build, "sequential_path", None)
    return str(path) if path and getattr(build, "sequential_enabled", None) else None


def evaluation_run_exists(*, version: int) -> bool:
    return EvaluationRun.objects.filter(config_version=version).exists()
