"""Job liveness: who runs a step, the heartbeat, the lost-job sweep and redelivered steps.

Processes here are real: a dead worker is a child process that ran and was collected, a live
one a child still sleeping, so the liveness check reads the real ``/proc``.
"""

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.choices import BuildStatus, JobState
from jobs.liveness import (
    Liveness,
    ProcessId,
    local_process,
    process_liveness,
    this_process,
)
from jobs.models import Job
from jobs.services.runs import _Heartbeat, job_create, job_step_run, jobs_fail_lost
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord
from recommender.models import IndexBuild
from recommender.services.embeddings import get_embedder
from recommender.services.index import serving_index_reset
from recommender.services.ingestion import products_upsert

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_process() -> ProcessId:
    """The identity of a process that ran on this host and is gone (and collected)."""
    child = subprocess.Popen(["sleep", "60"])
    identity = local_process(child.pid)
    child.kill()
    child.wait()
    return identity


@pytest.fixture
def live_process() -> Iterator[ProcessId]:
    child = subprocess.Popen(["sleep", "60"])
    yield local_process(child.pid)
    child.kill()
    child.wait()


@pytest.fixture
def catalogue(settings, tmp_path):
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    serving_index_reset()
    products_upsert(records=[ProductRecord("A", "Red apple"), ProductRecord("B", "Green pear")])


def _running(*, step: str, worker: ProcessId | str, silent_s: float, attempts: int = 1) -> Job:
    """A reindex job whose embedding step is done and whose ``step`` runs (or ran) in
    ``worker``, last heard from ``silent_s`` seconds ago."""
    now = timezone.now()
    return Job.objects.create(
        kind=JobKind.REINDEX,
        state=JobState.RUNNING,
        started_at=now - timedelta(minutes=1),
        heartbeat_at=now - timedelta(seconds=silent_s),
        step=step,
        attempts=attempts,
        worker=str(worker),
        progress=80.0,
        counts={"embed": {"embedded": 2}} if step == "build" else {},
    )


def _half_build(job: Job) -> IndexBuild:
    """An index build the job's lost attempt left BUILDING."""
    return IndexBuild.objects.create(
        status=BuildStatus.BUILDING, model_name="m", m=16, ef_construction=200, ef_search=128,
        job=job,
    )  # fmt: skip


# Liveness of a process ---------------------------------------------------------------------


def test_a_process_is_alive_dead_or_unknown_from_here(dead_process, live_process):
    here = this_process()
    reused_pid = ProcessId(
        host=here.host, pid=here.pid, namespace=here.namespace, started=here.started + "0"
    )

    assert process_liveness(here) is Liveness.ALIVE
    assert process_liveness(live_process) is Liveness.ALIVE
    assert process_liveness(dead_process) is Liveness.DEAD
    assert process_liveness(reused_pid) is Liveness.DEAD  # Same pid, a later process.
    assert process_liveness(ProcessId("elsewhere", here.pid, "1", "1")) is Liveness.UNKNOWN
    assert ProcessId.parse(str(here)) == here
    assert ProcessId.parse("not a process") is None


def test_a_zombie_process_is_dead():
    child = subprocess.Popen(["true"])
    identity = local_process(child.pid)
    while process_liveness(identity) is Liveness.ALIVE:
        time.sleep(0.01)  # Until it has exited; it stays uncollected until wait() below.

    assert process_liveness(identity) is Liveness.DEAD
    child.wait()


# The lost-job sweep ------------------------------------------------------------------------


def test_the_sweep_fails_a_job_whose_process_died_and_its_half_made_build(settings, dead_process):
    settings.RECSITE_JOB_HEARTBEAT_SECONDS = 5
    job = _running(step="build", worker=dead_process, silent_s=10.5)
    half = _half_build(job)

    assert jobs_fail_lost() == 1

    job.refresh_from_db()
    half.refresh_from_db()
    message = (
        f"worker lost: process {dead_process.pid} on {dead_process.host} died during step 'build'"
    )
    assert (job.state, job.error) == (JobState.FAILED, message)
    assert job.finished_at is not None
    assert (half.status, half.error) == (BuildStatus.FAILED, message)


def test_a_dead_process_is_given_a_heartbeat_interval_after_its_death_for_its_task_to_come_back(
    settings, dead_process
):
    # Its last heartbeat may have come just before the death or up to an interval before it:
    # either way the task has at least an interval after the death.
    settings.RECSITE_JOB_HEARTBEAT_SECONDS = 5
    just_died = _running(step="build", worker=dead_process, silent_s=1)
    died_an_interval_after_its_heartbeat = _running(step="build", worker=dead_process, silent_s=9)

    assert jobs_fail_lost() == 0

    just_died.refresh_from_db()
    died_an_interval_after_its_heartbeat.refresh_from_db()
    assert just_died.state == JobState.RUNNING
    assert died_an_interval_after_its_heartbeat.state == JobState.RUNNING


def test_another_hosts_job_is_lost_after_its_heartbeat_is_silent_for_the_set_time(settings):
    settings.RECSITE_JOB_LOST_AFTER_SECONDS = 20
    silent = _running(step="embed", worker="elsewhere/123/4026531836/99", silent_s=21)
    heard = _running(step="embed", worker="elsewhere/124/4026531836/99", silent_s=19)

    assert jobs_fail_lost() == 1

    silent.refresh_from_db()
    heard.refresh_from_db()
    assert (silent.state, silent.error) == (
        JobState.FAILED,
        "worker lost: no heartbeat from process 123 on elsewhere for 20 s during step 'embed'",
    )
    assert heard.state == JobState.RUNNING


def test_a_live_process_on_this_host_is_never_lost_however_silent(live_process):
    # Its heartbeat may be blocked (SQLite's single writer, a long call holding the GIL); the
    # process itself is the better witness.
    job = _running(step="build", worker=live_process, silent_s=3600)

    assert jobs_fail_lost() == 0

    job.refresh_from_db()
    assert job.state == JobState.RUNNING


def test_a_job_waiting_between_two_steps_is_not_lost():
    job = _running(step="embed", worker="", silent_s=3600)

    assert jobs_fail_lost() == 0

    job.refresh_from_db()
    assert job.state == JobState.RUNNING


# Steps delivered again ----------------------------------------------------------------------


def test_a_step_whose_process_died_runs_again_and_replaces_its_half_made_build(
    catalogue, dead_process
):
    job_step_run(job_id=(job := job_create(kind=JobKind.REINDEX, params={})).pk, step="embed")
    Job.objects.filter(pk=job.pk).update(step="build", attempts=1, worker=str(dead_process))
    half = _half_build(job)

    job = job_step_run(job_id=job.pk, step="build")

    half.refresh_from_db()
    ready = IndexBuild.objects.get(status=BuildStatus.READY)
    assert (job.state, job.step, job.attempts, job.worker) == (JobState.SUCCEEDED, "build", 2, "")
    assert job.counts["build"]["index_build"] == ready.pk
    assert ready.job == job
    assert half.status == BuildStatus.FAILED
    assert half.error == (
        f"worker lost: process {dead_process.pid} on {dead_process.host} died during step 'build'"
    )


def test_a_step_whose_process_died_after_publishing_adopts_that_build(catalogue, dead_process):
    job_step_run(job_id=(job := job_create(kind=JobKind.REINDEX, params={})).pk, step="embed")
    first = job_step_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk, step="build")
    published = IndexBuild.objects.get(status=BuildStatus.READY)
    published.job = job
    published.save()
    Job.objects.filter(pk=job.pk).update(step="build", attempts=1, worker=str(dead_process))

    job = job_step_run(job_id=job.pk, step="build")

    assert first.state == JobState.SUCCEEDED
    assert IndexBuild.objects.count() == 1  # No second build.
    assert job.state == JobState.SUCCEEDED
    assert job.counts["build"]["index_build"] == published.pk


def test_a_step_whose_process_died_as_often_as_allowed_fails_the_job(
    settings, catalogue, dead_process
):
    settings.RECSITE_JOB_MAX_ATTEMPTS = 2
    job = _running(step="build", worker=dead_process, silent_s=0, attempts=2)
    half = _half_build(job)

    job = job_step_run(job_id=job.pk, step="build")

    half.refresh_from_db()
    message = (
        "worker lost: step 'build' was started 2 times and its process died each time "
        "(killed, or out of memory?); not started again"
    )
    assert (job.state, job.error, job.attempts) == (JobState.FAILED, message, 2)
    assert half.status == BuildStatus.FAILED
    assert IndexBuild.objects.filter(status=BuildStatus.READY).count() == 0


def test_a_duplicate_delivery_of_a_step_running_elsewhere_is_skipped(catalogue, live_process):
    job = _running(step="build", worker=live_process, silent_s=0)

    again = job_step_run(job_id=job.pk, step="build")

    assert (again.state, again.attempts, again.worker) == (
        JobState.RUNNING,
        1,
        str(live_process),
    )
    assert IndexBuild.objects.count() == 0


def test_a_step_already_done_is_not_run_again_when_its_task_comes_back(catalogue):
    job = job_create(kind=JobKind.REINDEX, params={})
    job = job_step_run(job_id=job.pk, step="embed")
    counts = job.counts

    again = job_step_run(job_id=job.pk, step="embed")

    assert (again.state, again.counts, again.step) == (JobState.RUNNING, counts, "embed")


def test_a_step_running_on_a_silent_host_is_taken_over_once_it_is_lost(settings, catalogue):
    settings.RECSITE_JOB_HEARTBEAT_SECONDS = 0.02
    settings.RECSITE_JOB_LOST_AFTER_SECONDS = 0.2
    job_step_run(job_id=(job := job_create(kind=JobKind.REINDEX, params={})).pk, step="embed")
    Job.objects.filter(pk=job.pk).update(
        step="build", attempts=1, worker="elsewhere/7/1/1", heartbeat_at=timezone.now()
    )

    job = job_step_run(job_id=job.pk, step="build")

    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)


@pytest.mark.django_db(transaction=True)
def test_a_step_running_on_a_host_that_still_beats_is_left_to_it(settings, catalogue):
    settings.RECSITE_JOB_HEARTBEAT_SECONDS = 0.02
    settings.RECSITE_JOB_LOST_AFTER_SECONDS = 30
    job = _running(step="build", worker="elsewhere/7/1/1", silent_s=0)
    other_host = _Heartbeat(job_id=job.pk, worker=job.worker)

    with other_host:
        again = job_step_run(job_id=job.pk, step="build")

    assert (again.state, again.attempts, again.worker) == (JobState.RUNNING, 1, job.worker)
    assert IndexBuild.objects.count() == 0


# The heartbeat ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_beats_while_the_step_is_this_process(settings):
    settings.RECSITE_JOB_HEARTBEAT_SECONDS = 0.02
    then = timezone.now() - timedelta(minutes=5)
    ours = _running(step="build", worker=this_process(), silent_s=300)
    theirs = _running(step="build", worker="elsewhere/7/1/1", silent_s=300)

    with (
        _Heartbeat(job_id=ours.pk, worker=ours.worker),
        _Heartbeat(job_id=theirs.pk, worker=str(this_process())),
    ):
        for _ in range(3000):  # A bound, should it never beat.
            ours.refresh_from_db()
            assert ours.heartbeat_at is not None
            if ours.heartbeat_at > then + timedelta(minutes=4):
                break
            time.sleep(0.01)

    theirs.refresh_from_db()
    assert ours.heartbeat_at is not None
    assert theirs.heartbeat_at is not None
    assert ours.heartbeat_at > then + timedelta(minutes=4)
    assert theirs.heartbeat_at < then + timedelta(seconds=1)  # Not this process's to beat.
