"""Reads for the Prometheus metrics taken from the database at scrape time (``/metrics``):
the age of the newest builds and the job history. Exact across every host and process, with
nothing to collect in the workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

from jobs.choices import JobState
from jobs.models import Job
from jobs.selectors import builds_ready
from recommender.models import EngineBuild, IndexBuild


def builds_newest_finished() -> dict[str, datetime | None]:
    """When the newest READY index and engine builds were published (None: no build yet)."""
    return {
        "index": builds_ready(IndexBuild).values_list("finished_at", flat=True).first(),
        "engine": builds_ready(EngineBuild).values_list("finished_at", flat=True).first(),
    }


@dataclass(frozen=True, slots=True)
class JobTally:
    kind: str
    state: str
    jobs: int
    lost: int  # Failed because their worker died.
    timed: int  # Those with a start and an end, whose seconds are summed.
    seconds: float


def job_tallies() -> list[JobTally]:
    """Jobs by kind and state, with the seconds of those that ended (one grouped query)."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    ended = Q(started_at__isnull=False, finished_at__isnull=False)
    rows = (
        Job.objects.order_by()
        .values("kind", "state")
        .annotate(
            jobs=Count("id"),
            lost=Count("id", filter=Q(state=JobState.FAILED, error__startswith="worker lost")),
            timed=Count("id", filter=ended),
            duration=Sum(duration, filter=ended),
        )
    )
    return [
        JobTally(
            kind=row["kind"],
            state=row["state"],
            jobs=row["jobs"],
            lost=row["lost"],
            timed=row["timed"],
            seconds=row["duration"].total_seconds() if row["duration"] else 0.0,
        )
        for row in sorted(rows, key=lambda r: (r["kind"], r["state"]))
    ]
