"""Job records: one row per background run, updated by the worker as it goes.

An interface (API, dashboard, command, beat task) starts a job with :func:`job_start`: the row is
created and its task sent to the workers once the transaction commits (:func:`delay_on_commit`).
Celery tasks run its steps through :func:`job_steps_run`. A kind of job is a list of weighted
steps that its app registers (:mod:`jobs.registry`; an import has one; a reindex embeds on the
``gpu`` queue, then builds the index on the ``cpu`` queue), and progress runs from 0 to 100
across them. Running is idempotent: a finished job is not run again, a step already
done is skipped, and a step redelivered after its worker died runs again (at most
``RECSITE_JOB_MAX_ATTEMPTS`` times), which is safe because every step's work is itself
idempotent (a build step first adopts a build its lost attempt already published).

Liveness: the process running a step is recorded on the job (:mod:`jobs.liveness`) and writes a
heartbeat every ``RECSITE_JOB_HEARTBEAT_SECONDS`` from a thread of its own, whatever the step is
doing. :func:`jobs_fail_lost`, which every Celery worker runs every ``RECSITE_JOB_SWEEP_SECONDS``
(``recsite/celery.py``), fails a running job whose process is gone (same host: known at once) or
silent for ``RECSITE_JOB_LOST_AFTER_SECONDS`` (another host). A job waiting between two steps
(its next task queued) has no process and is never taken for lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from celery import Task
from celery.canvas import Signature
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from jobs.choices import BuildStatus, JobState
from jobs.liveness import Liveness, ProcessId, process_liveness, this_process
from jobs.models import ArtifactBuild, Job
from jobs.registry import Progress, job_kind_get, job_kind_steps

logger = logging.getLogger(__name__)

# Progress is written at most this often, so a fast loop does not hammer the database.
_PROGRESS_INTERVAL_S = 0.5


def job_create(
    *,
    kind: str,
    params: Mapping[str, Any],
    triggered_by: User | AnonymousUser | None = None,
) -> Job:
    """A queued job of a registered kind (:class:`jobs.registry.UnknownJobKind` otherwise).
    Token principals and anonymous users are recorded as nobody."""
    spec = job_kind_get(kind)
    return Job.objects.create(
        kind=spec.kind,
        params=dict(params),
        triggered_by=triggered_by if isinstance(triggered_by, User) else None,
    )


# What runs a job's steps on the workers: a task taking ``job_id``, or a function of ``job_id``
# returning a signature (a chain of tasks on several queues, like the reindex).
JobTask: TypeAlias = Task | Callable[..., Signature]


def delay_on_commit(task: Task | Signature, *args: Any, **kwargs: Any) -> None:
    """Send ``task(*args, **kwargs)`` (or a ready signature) to the workers once the current
    transaction commits, at once outside one: a worker never looks for a row not yet committed,
    and a rolled-back request sends nothing."""
    signature = task if isinstance(task, Signature) else task.si(*args, **kwargs)
    transaction.on_commit(signature.apply_async)


def job_signature(task: JobTask, *, job_id: int) -> Signature:
    """The signature that runs job ``job_id`` with ``task`` (see :data:`JobTask`)."""
    if isinstance(task, Task):
        return task.si(job_id=job_id)
    return task(job_id=job_id)


def job_start(
    *,
    kind: str,
    task: JobTask,
    params: Mapping[str, Any] | None = None,
    triggered_by: User | AnonymousUser | None = None,
) -> Job:
    """Create a queued job and send it to the workers with ``task`` once the transaction
    commits: how the API, the dashboard and the beat tasks start every job."""
    job = job_create(kind=kind, params=params or {}, triggered_by=triggered_by)
    delay_on_commit(job_signature(task, job_id=job.pk))
    return job


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
            try:
                Job.objects.filter(pk=self.job_pk).update(
                    progress=percent, heartbeat_at=timezone.now()
                )
            except DatabaseError as exc:
                # Progress is a courtesy, never a reason to fail the step: on SQLite a write
                # from a connection still reading a large result (the fit's event columns)
                # is refused once another connection (the heartbeat) has committed since the
                # read began ("database is locked", whatever the timeout). The next call
                # writes again; liveness is the heartbeat's.
                logger.debug("Job %s: progress not written: %s", self.job_pk, exc)
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


def _build_models() -> list[type[ArtifactBuild]]:
    """Every app's concrete build model (index builds, engine builds, churn models, ...)."""
    return [m for m in apps.get_models() if issubclass(m, ArtifactBuild)]


def _lost_attempt_builds_fail(*, job_ids: list[int], message: str, now: datetime) -> None:
    """Fail the builds that lost attempts left BUILDING: never published, and so the next
    build's sweep deletes their files."""
    for model in _build_models():
        model._default_manager.filter(job_id__in=job_ids, status=BuildStatus.BUILDING).update(
            status=BuildStatus.FAILED, error=message, finished_at=now
        )


def _worker_liveness(job: Job, *, now: datetime) -> Liveness:
    """Whether the process that runs (or ran) ``job``'s current step is alive."""
    process = ProcessId.parse(job.worker)
    if process is not None:
        verdict = process_liveness(process)
        if verdict is not Liveness.UNKNOWN:
            return verdict
    lost_after = timedelta(seconds=settings.RECSITE_JOB_LOST_AFTER_SECONDS)
    if job.heartbeat_at is None or now - job.heartbeat_at > lost_after:
        return Liveness.DEAD
    return Liveness.UNKNOWN  # Another host's, heard from recently.


def _describe(worker: str) -> str:
    process = ProcessId.parse(worker)
    return f"process {process.pid} on {process.host}" if process else "its process"


def _step_claim(*, job_id: int, step: str, names: list[str], me: str) -> tuple[Job, bool]:
    """Take ``step`` of the job for this process; ``(job, False)`` when it must not run here.

    Not run: the job is finished, the step was done already, or another live process runs it
    (a duplicate delivery). A step whose process died (its task was delivered again: late
    acknowledgement) is taken over, at most ``RECSITE_JOB_MAX_ATTEMPTS`` times; past that the job
    fails. While another host's process is unknown, the claim watches its heartbeat: one that
    moves is alive, one silent for ``RECSITE_JOB_LOST_AFTER_SECONDS`` is lost.
    """
    position = names.index(step)
    seen: datetime | None = None  # The unknown process's heartbeat when the watch began.
    while True:
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            now = timezone.now()
            if job.state in (JobState.SUCCEEDED, JobState.FAILED):
                logger.info("Job %s already %s; step %s skipped", job_id, job.state, step)
                return job, False
            done = job.step in names and names.index(job.step) > position
            if done or (len(names) > 1 and step in job.counts):
                logger.info("Job %s already did step %s; skipped", job_id, step)
                return job, False
            verdict = None
            if job.step == step and job.worker and job.worker != me:
                verdict = _worker_liveness(job, now=now)
                if verdict is Liveness.UNKNOWN and seen is not None and job.heartbeat_at != seen:
                    verdict = Liveness.ALIVE  # Its heartbeat moved while this one watched.
            if verdict is Liveness.ALIVE:
                logger.warning(
                    "Job %s step %s is running in %s; this delivery is skipped",
                    job_id, step, _describe(job.worker),
                )  # fmt: skip
                return job, False
            if verdict is Liveness.UNKNOWN:
                seen = seen or job.heartbeat_at
            else:
                if verdict is Liveness.DEAD:
                    if job.attempts >= settings.RECSITE_JOB_MAX_ATTEMPTS:
                        message = (
                            f"worker lost: step '{step}' was started {job.attempts} times and "
                            "its process died each time (killed, or out of memory?); not "
                            "started again"
                        )
                        _jobs_fail(job_ids=[job_id], message=message, now=now)
                        logger.error("Job %s failed: %s", job_id, message)
                        job.refresh_from_db()
                        return job, False
                    message = f"worker lost: {_describe(job.worker)} died during step '{step}'"
                    _lost_attempt_builds_fail(job_ids=[job_id], message=message, now=now)
                    logger.warning("Job %s: %s; starting it again", job_id, message)
                    job.attempts += 1
                elif job.step != step:
                    job.step = step
                    job.attempts = 1
                if job.state == JobState.QUEUED:
                    job.state = JobState.RUNNING
                    job.started_at = now
                job.worker = me
                job.heartbeat_at = now
                job.save(
                    update_fields=[
                        "state", "started_at", "heartbeat_at", "step", "attempts", "worker",
                    ]
                )  # fmt: skip
                return job, True
        time.sleep(settings.RECSITE_JOB_HEARTBEAT_SECONDS / 2)


class _Heartbeat:
    """Writes a running step's heartbeat every ``RECSITE_JOB_HEARTBEAT_SECONDS`` from a thread of
    its own, so a step that reports no progress for minutes (a graph build in C++, one large
    query) still shows it is alive. Only while the job is still this process's to run."""

    def __init__(self, *, job_id: int, worker: str) -> None:
        self.job_id = job_id
        self.worker = worker
        self.interval = settings.RECSITE_JOB_HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat")
        self._thread.daemon = True

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # A write blocked by a lock (SQLite's single writer) ends by itself; nobody waits for it.
        self._thread.join(timeout=self.interval)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    Job.objects.filter(
                        pk=self.job_id, state=JobState.RUNNING, worker=self.worker
                    ).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:
                    logger.warning("Job %s: heartbeat not written: %s", self.job_id, exc)
        finally:
            connections.close_all()  # This thread's own connections.


def job_step_run(*, job_id: int, step: str, echo: Progress | None = None) -> Job:
    """Run one step of a job, recording progress, counts, timings and any error.

    The last step marks the job SUCCEEDED. ``echo`` also receives the job's overall progress
    (0..1), for a command-line progress bar.
    """
    steps = job_kind_steps(Job.objects.values_list("kind", flat=True).get(pk=job_id))
    names = [s.name for s in steps]
    if step not in names:
        raise ValueError(f"step {step!r} is not one of {names}")
    position = names.index(step)
    me = str(this_process())
    job, claimed = _step_claim(job_id=job_id, step=step, names=names, me=me)
    if not claimed:
        return job
    current = steps[position]
    start = sum(s.weight for s in steps[:position])
    writer = _ProgressWriter(job, start, current.weight, echo)
    try:
        with _Heartbeat(job_id=job.pk, worker=me):
            counts = current.run(job, writer)
    except Exception as exc:
        Job.objects.filter(pk=job.pk, worker=me).update(
            state=JobState.FAILED,
            error=f"{step}: {type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
            worker="",
        )
        logger.exception("Job %s (%s) failed in step %s", job.pk, job.kind, step)
        raise
    finally:
        writer.close()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state != JobState.RUNNING or job.worker != me:
            # Failed as lost meanwhile (a heartbeat silent too long), or taken over.
            logger.warning(
                "Job %s step %s finished here, but the job is %s and its step runs in %s: "
                "result not recorded", job.pk, step, job.state, _describe(job.worker),
            )  # fmt: skip
            return job
        job.counts = dict(counts) if len(steps) == 1 else {**job.counts, step: dict(counts)}
        job.heartbeat_at = timezone.now()
        job.worker = ""  # Between two steps no process runs the job (the next task is queued).
        fields = ["counts", "heartbeat_at", "progress", "worker"]
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
    enqueue: Signature | None = None,
    echo: Progress | None = None,
    poll_seconds: float = 0.5,
) -> Job:
    """Run ``job`` in this process, or, with ``enqueue`` (the signature that runs it on the
    workers), enqueue it once the current transaction commits and follow its progress.

    The commands' shared path: ``echo`` receives the overall progress (0..1) for a progress bar.
    Raises :class:`JobFailed` ("<name> job <id> failed: <error>") unless the job succeeded.
    """
    try:
        if enqueue is not None:
            delay_on_commit(enqueue)
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


def job_steps_run(
    *, job_id: int, steps: tuple[str, ...] | None = None, echo: Progress | None = None
) -> Job:
    """Run the job's registered steps in order, or only ``steps`` of them (a task of a kind
    whose steps run on several queues). Every task body is this call; a finished job or a step
    already done is skipped, so a redelivered task is harmless."""
    kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)
    names = [s.name for s in job_kind_steps(kind)]
    unknown = sorted(set(steps or ()) - set(names))
    if unknown:
        raise ValueError(f"steps {unknown} are not steps of {kind} ({names})")
    job: Job | None = None
    for name in names:
        if steps is None or name in steps:
            job = job_step_run(job_id=job_id, step=name, echo=echo)
    assert job is not None
    return job


def job_run(*, job_id: int, echo: Progress | None = None) -> Job:
    """Run every step of a job in this process (commands, eager mode)."""
    return job_steps_run(job_id=job_id, echo=echo)


def _jobs_fail(*, job_ids: list[int], message: str, now: datetime) -> None:
    Job.objects.filter(pk__in=job_ids).update(state=JobState.FAILED, error=message, finished_at=now)
    _lost_attempt_builds_fail(job_ids=job_ids, message=message, now=now)


def _lost_message(job: Job, *, now: datetime) -> str | None:
    """Why ``job``'s worker is lost, or None while it may be alive."""
    process = ProcessId.parse(job.worker)
    verdict = process_liveness(process) if process is not None else Liveness.UNKNOWN
    if verdict is Liveness.ALIVE:
        return None
    silent = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
    if verdict is Liveness.DEAD:
        # A task delivered again after its worker died has a heartbeat's interval at least to
        # take the step over (and then the job is not lost). The death itself is not recorded:
        # it came up to an interval after the last heartbeat, so two intervals of silence
        # leave a whole one after it, however the death and the heartbeats fell.
        if silent is not None and silent < 2 * settings.RECSITE_JOB_HEARTBEAT_SECONDS:
            return None
        return f"worker lost: {_describe(job.worker)} died during step '{job.step}'"
    if silent is not None and silent <= settings.RECSITE_JOB_LOST_AFTER_SECONDS:
        return None
    return (
        f"worker lost: no heartbeat from {_describe(job.worker)} for "
        f"{settings.RECSITE_JOB_LOST_AFTER_SECONDS:g} s during step '{job.step}'"
    )


def jobs_fail_lost(*, now: datetime | None = None) -> int:
    """Fail running jobs whose worker died (killed, out of memory, machine lost); returns how many.

    A step's process is lost when it no longer exists (seen from its own host) or when it wrote
    no heartbeat for ``RECSITE_JOB_LOST_AFTER_SECONDS`` (seen from another). Builds such a job
    left half-made are failed too: they were never published, so the previous builds kept
    serving throughout. Every Celery worker calls this every ``RECSITE_JOB_SWEEP_SECONDS``.
    """
    now = now or timezone.now()
    running = Job.objects.filter(state=JobState.RUNNING).exclude(worker="")
    suspects = [job.pk for job in running if _lost_message(job, now=now) is not None]
    if not suspects:
        return 0
    lost = 0
    with transaction.atomic():
        # Judged again under the lock: a redelivered task may have taken a step over meanwhile.
        for job in (
            Job.objects.select_for_update()
            .filter(pk__in=suspects, state=JobState.RUNNING)
            .exclude(worker="")
        ):
            message = _lost_message(job, now=now)
            if message is not None:
                _jobs_fail(job_ids=[job.pk], message=message, now=now)
                logger.error("Job %s (%s) failed: %s", job.pk, job.kind, message)
                lost += 1
    return lost
