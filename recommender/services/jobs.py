"""Job records: one row per background run, updated by the worker as it goes.

An interface (API, dashboard, command) creates a job; Celery tasks run its steps through
:func:`job_step_run`. A kind of job is a list of weighted steps (an import has one; a reindex
embeds on the ``gpu`` queue, then builds the index on the ``cpu`` queue), and progress runs from
0 to 100 across them. Running is idempotent: a finished job is not run again, and a step
redelivered after its worker died simply runs again, which is safe because every step's work is
itself idempotent. Jobs whose worker vanished are failed by :func:`jobs_fail_stale`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from recommender.choices import BuildStatus, JobKind, JobState
from recommender.models import EngineBuild, IndexBuild, Job

logger = logging.getLogger(__name__)

# Progress is written at most this often, so a fast loop does not hammer the database.
_PROGRESS_INTERVAL_S = 0.5
# A running job with no heartbeat for this long has lost its worker.
STALE_AFTER = timedelta(minutes=15)

Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    weight: float
    run: Callable[[Job, Progress], Mapping[str, Any]]


def _import_step(service_name: str) -> Step:
    def run(job: Job, progress: Progress) -> Mapping[str, Any]:
        # Imported here: the import services pull in file readers only workers need.
        from recommender.services import imports

        service = getattr(imports, service_name)
        return service(
            path=job.params["path"], strict=job.params.get("strict", False), progress=progress
        ).as_dict()

    return Step("import", 1.0, run)


def _embed(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.embeddings import product_embeddings_refresh

    return product_embeddings_refresh(full=True, progress=progress).as_dict()


def _build(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.index import vector_index_build

    build = vector_index_build(job=job, progress=progress)
    return {
        "index_build": build.pk,
        "items": build.item_count,
        "dimension": build.dimension,
        "self_check_recall": build.self_check_recall,
        "seconds": build.build_seconds,
    }


def _fit(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.recommendations import engine_build

    build = engine_build(job=job, progress=progress)
    return {
        "engine_build": build.pk,
        "items": build.item_count,
        "customers": build.customer_count,
        "events": build.event_count,
        "config_version": build.config_version,
        "seconds": build.fit_seconds,
        "collaborative": build.collaborative,
        "memory_estimate_mb": round(build.memory["estimate"]["total"] / 2**20),
        "peak_memory_mb": round(build.memory["peak_rss"] / 2**20)
        if build.memory["peak_rss"]
        else None,
    }


def _tuning_sample(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Prepare the tuning page's metric sample of the new build now, in the worker, so the
    first merchandiser to move a slider does not wait for it (about 20 s on the demo data)."""
    from recommender.services.recommendations import serving_engine_recheck
    from recommender.services.tuning import tuning_sample

    serving_engine_recheck()  # The build the fit step just published.
    sample = tuning_sample()
    return {"tuning_sample_customers": sample.customers}


def _evaluate(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.evaluation_runs import evaluation_job_run

    return evaluation_job_run(job=job, progress=progress)


STEPS: dict[str, tuple[Step, ...]] = {
    JobKind.IMPORT_PRODUCTS: (_import_step("products_import_file"),),
    JobKind.IMPORT_EVENTS: (_import_step("events_import_file"),),
    JobKind.IMPORT_ONLINE_RETAIL: (_import_step("online_retail_import_file"),),
    JobKind.REINDEX: (Step("embed", 0.8, _embed), Step("build", 0.2, _build)),
    JobKind.TRAIN: (Step("fit", 0.6, _fit), Step("tuning-sample", 0.4, _tuning_sample)),
    JobKind.EVALUATE: (Step("evaluate", 1.0, _evaluate),),
}


def job_kind_register(kind: JobKind, steps: tuple[Step, ...]) -> None:
    """Register the steps of a job kind another app runs (tagging, churn).

    Called from that app's ``AppConfig.ready()``: ``recommender`` never imports the apps built
    on it, yet their jobs share this table, its progress bar, history and stale-job sweep.
    """
    if not steps:
        raise ValueError(f"{kind}: a job kind needs at least one step")
    registered = STEPS.get(kind)
    if registered is not None and [s.name for s in registered] != [s.name for s in steps]:
        raise ValueError(f"{kind}: already registered with other steps")
    STEPS[kind] = steps


def job_create(
    *,
    kind: JobKind,
    params: Mapping[str, Any],
    triggered_by: User | AnonymousUser | None = None,
) -> Job:
    """A queued job. Token principals and anonymous users are recorded as nobody."""
    return Job.objects.create(
        kind=kind,
        params=dict(params),
        triggered_by=triggered_by if isinstance(triggered_by, User) else None,
    )


class _ProgressWriter:
    """Maps a step's 0..1 progress into the job's 0..100 and writes it, throttled.

    Progress must be visible while the step runs, even when the step's work is one transaction
    (a strict import is all or nothing). Inside a transaction on PostgreSQL it is therefore
    written through a second, autocommit connection. SQLite allows one writer at a time, so
    there progress inside a transaction is only echoed, and written when the step ends.
    """

    def __init__(self, job: Job, start: float, weight: float, echo: Progress | None) -> None:
        self.job_pk = job.pk
        self.start = start
        self.weight = weight
        self.echo = echo
        self.last_write = 0.0
        self._side: BaseDatabaseWrapper | None = None

    def __call__(self, fraction: float) -> None:
        percent = round(100 * (self.start + self.weight * min(max(fraction, 0.0), 1.0)), 1)
        if self.echo is not None:
            self.echo(percent / 100)
        now = time.monotonic()
        if now - self.last_write < _PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        if not connection.in_atomic_block:
            Job.objects.filter(pk=self.job_pk).update(progress=percent, heartbeat_at=timezone.now())
        elif connection.vendor == "postgresql":
            if self._side is None:
                self._side = connections.create_connection(DEFAULT_DB_ALIAS)
            with self._side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Job._meta.db_table} SET progress = %s, heartbeat_at = %s "
                    "WHERE id = %s",
                    [percent, timezone.now(), self.job_pk],
                )

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


def job_step_run(*, job_id: int, step: str, echo: Progress | None = None) -> Job:
    """Run one step of a job, recording progress, counts, timings and any error.

    The last step marks the job SUCCEEDED. ``echo`` also receives the job's overall progress
    (0..1), for a command-line progress bar.
    """
    steps = STEPS[Job.objects.values_list("kind", flat=True).get(pk=job_id)]
    names = [s.name for s in steps]
    if step not in names:
        raise ValueError(f"step {step!r} is not one of {names}")
    position = names.index(step)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in (JobState.SUCCEEDED, JobState.FAILED):
            logger.info("Job %s already %s; step %s skipped", job_id, job.state, step)
            return job
        now = timezone.now()
        if job.state == JobState.QUEUED:
            job.state = JobState.RUNNING
            job.started_at = now
        job.heartbeat_at = now
        job.save(update_fields=["state", "started_at", "heartbeat_at"])
    current = steps[position]
    start = sum(s.weight for s in steps[:position])
    writer = _ProgressWriter(job, start, current.weight, echo)
    try:
        counts = current.run(job, writer)
    except Exception as exc:
        Job.objects.filter(pk=job.pk).update(
            state=JobState.FAILED,
            error=f"{step}: {type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )
        logger.exception("Job %s (%s) failed in step %s", job.pk, job.kind, step)
        raise
    finally:
        writer.close()
    job.refresh_from_db()
    job.counts = dict(counts) if len(steps) == 1 else {**job.counts, step: dict(counts)}
    job.heartbeat_at = timezone.now()
    fields = ["counts", "heartbeat_at", "progress"]
    job.progress = round(100 * (start + current.weight), 1)
    if position == len(steps) - 1:
        job.state = JobState.SUCCEEDED
        job.progress = 100.0
        job.finished_at = job.heartbeat_at
        fields += ["state", "finished_at"]
    job.save(update_fields=fields)
    logger.info("Job %s (%s) step %s done: %s", job.pk, job.kind, step, counts)
    return job


class JobFailed(Exception):
    """A job ended in failure (or not at all); the message names the job and its error."""


def job_run_or_follow(
    *,
    job: Job,
    name: str,
    enqueue: Callable[[], Any] | None = None,
    echo: Progress | None = None,
    poll_seconds: float = 0.5,
) -> Job:
    """Run ``job`` in this process, or, with ``enqueue`` (a callable that sends it to the
    workers), enqueue it once the current transaction commits and follow its progress.

    The commands' shared path: ``echo`` receives the overall progress (0..1) for a progress bar.
    Raises :class:`JobFailed` ("<name> job <id> failed: <error>") unless the job succeeded.
    """
    try:
        if enqueue is not None:
            transaction.on_commit(enqueue)
            while job.state in (JobState.QUEUED, JobState.RUNNING):
                time.sleep(poll_seconds)
                job.refresh_from_db()
                if echo is not None:
                    echo(job.progress / 100)
        else:
            job = job_run(job_id=job.pk, echo=echo)
    except Exception as exc:
        job.refresh_from_db()
        raise JobFailed(f"{name} job {job.pk} failed: {job.error or exc}") from exc
    if job.state != JobState.SUCCEEDED:
        raise JobFailed(f"{name} job {job.pk} {job.state}: {job.error}")
    return job


def job_run(*, job_id: int, echo: Progress | None = None) -> Job:
    """Run every step of a job in this process (commands, eager mode)."""
    job = Job.objects.get(pk=job_id)
    for step in STEPS[job.kind]:
        job = job_step_run(job_id=job_id, step=step.name, echo=echo)
    return job


@transaction.atomic
def jobs_fail_stale(*, now: Any = None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, machine lost).

    An index build such a job left half-done is failed too; its file was never published, so
    the previous build kept serving throughout.
    """
    now = now or timezone.now()
    lost = list(
        Job.objects.select_for_update()
        .filter(state=JobState.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
        .values_list("pk", flat=True)
    )
    message = f"worker lost: no progress for {int(STALE_AFTER.total_seconds() // 60)} minutes"
    Job.objects.filter(pk__in=lost).update(state=JobState.FAILED, error=message, finished_at=now)
    IndexBuild.objects.filter(job_id__in=lost, status=BuildStatus.BUILDING).update(
        status=BuildStatus.FAILED, error=message, finished_at=now
    )
    EngineBuild.objects.filter(job_id__in=lost, status=BuildStatus.BUILDING).update(
        status=BuildStatus.FAILED, error=message, finished_at=now
    )
    return len(lost)
