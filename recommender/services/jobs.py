"""Job records: one row per background run, updated by the worker as it goes.

A job is created by an interface (API, dashboard, command), then run by a Celery task that calls
:func:`job_run`. Running is idempotent: a finished job is not run again, and a job found
``running`` (its worker died and the message was redelivered) simply runs again, which is safe
because every job's work is itself idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from recommender.choices import JobKind, JobState
from recommender.models import Job

logger = logging.getLogger(__name__)

# Progress is written at most this often, so a fast loop does not hammer the database.
_PROGRESS_INTERVAL_S = 0.5

JobRunner = Callable[[Job, Callable[[float], None]], Mapping[str, Any]]


def job_create(
    *, kind: JobKind, params: Mapping[str, Any], triggered_by: AbstractBaseUser | None = None
) -> Job:
    return Job.objects.create(
        kind=kind,
        params=dict(params),
        triggered_by=triggered_by if triggered_by and triggered_by.pk else None,
    )


class _ProgressWriter:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.last_write = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last_write < _PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        percent = round(min(max(fraction, 0.0), 1.0) * 100, 1)
        # Progress is written outside any enclosing transaction's view of the job row: it uses
        # a plain UPDATE so that readers see it while the job's own work is still running.
        Job.objects.filter(pk=self.job.pk).update(progress=percent)


def _runners() -> dict[str, JobRunner]:
    # Imported here: the import services pull in file readers only workers need.
    from recommender.services import imports

    def run_products(job: Job, progress: Callable[[float], None]) -> Mapping[str, Any]:
        return imports.products_import_file(
            path=job.params["path"], strict=job.params.get("strict", False), progress=progress
        ).as_dict()

    def run_events(job: Job, progress: Callable[[float], None]) -> Mapping[str, Any]:
        return imports.events_import_file(
            path=job.params["path"], strict=job.params.get("strict", False), progress=progress
        ).as_dict()

    def run_online_retail(job: Job, progress: Callable[[float], None]) -> Mapping[str, Any]:
        return imports.online_retail_import_file(
            path=job.params["path"], strict=job.params.get("strict", False), progress=progress
        ).as_dict()

    return {
        JobKind.IMPORT_PRODUCTS: run_products,
        JobKind.IMPORT_EVENTS: run_events,
        JobKind.IMPORT_ONLINE_RETAIL: run_online_retail,
    }


def job_run(*, job_id: int) -> Job:
    """Run a queued job to completion, recording progress, counts, timings and any error."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in (JobState.SUCCEEDED, JobState.FAILED):
            logger.info("Job %s already %s; nothing to do", job_id, job.state)
            return job
        job.state = JobState.RUNNING
        job.started_at = timezone.now()
        job.progress = 0.0
        job.error = ""
        job.save(update_fields=["state", "started_at", "progress", "error"])
    runner = _runners()[job.kind]
    try:
        counts = runner(job, _ProgressWriter(job))
    except Exception as exc:
        # Recorded for the jobs page, then re-raised so Celery logs the traceback too.
        Job.objects.filter(pk=job.pk).update(
            state=JobState.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )
        logger.exception("Job %s (%s) failed", job.pk, job.kind)
        raise
    Job.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED, progress=100.0, counts=dict(counts), finished_at=timezone.now()
    )
    job.refresh_from_db()
    logger.info("Job %s (%s) succeeded: %s", job.pk, job.kind, job.counts)
    return job
