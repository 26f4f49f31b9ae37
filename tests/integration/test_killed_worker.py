"""A worker's pool process killed in the middle of a job (SIGKILL, as the kernel's out-of-memory
killer does): the task comes back at once (late acknowledgement, ``reject_on_worker_lost``), the
job's step runs again in a fresh process and completes; a step that kills its process every time
fails instead of coming back for ever; and a rerun succeeds. Real worker (prefork), Redis and
PostgreSQL.

To catch the job in the middle, deterministically: the test holds a row lock on a product that
the import updates, so the import waits for it, visibly, in ``pg_stat_activity``, until the test
lets it go.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from jobs.choices import JobState
from jobs.liveness import ProcessId, local_process
from jobs.models import Job
from jobs.services.runs import job_create
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord
from recommender.models import Product
from recommender.services.ingestion import products_upsert
from recommender.tasks import import_job_run

from .conftest import LiveWorker, database_url, through_the_broker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PRODUCTS_CSV = """product_id,title,category
P1,Blue mug (new title),Kitchen
P2,Teapot,Kitchen
"""


@pytest.fixture(autouse=True)
def _real_parts() -> None:
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs PostgreSQL (row locks) and Redis (a message comes back when refused)")


@contextmanager
def product_locked(external_id: str) -> Iterator[psycopg.Connection]:
    """Hold a row lock on a product (another connection, as another client would)."""
    with psycopg.connect(database_url()) as lock:
        lock.execute(
            "SELECT 1 FROM recommender_product WHERE external_id = %s FOR UPDATE", [external_id]
        )
        yield lock
        lock.rollback()


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def wait_until(
    what: str, condition: Callable[[], bool], worker: LiveWorker, timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}\nworker log:\n{worker.log_text()}")
        if worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log_text()}")
        time.sleep(0.05)


def job_now(job: Job) -> Job:
    job.refresh_from_db()
    return job


def kill_the_process_running(job: Job) -> int:
    process = ProcessId.parse(job_now(job).worker)
    assert process is not None
    assert process.pid != os.getpid()  # A worker's pool process, never this test.
    os.kill(process.pid, signal.SIGKILL)
    return process.pid


def blocked_in_attempt(job: Job, attempt: int) -> Callable[[], bool]:
    """The job's step runs for the ``attempt``-th time and waits for the locked row."""

    def check() -> bool:
        current = job_now(job)
        return (
            current.state == JobState.RUNNING
            and current.attempts == attempt
            and lock_waiters() >= attempt  # A dead attempt's session may still be queued.
        )

    return check


@pytest.fixture
def import_job(tmp_path) -> Callable[[], Job]:
    products_upsert(records=[ProductRecord("P1", "Blue mug", category="Kitchen")])
    path = tmp_path / "products.csv"
    path.write_text(PRODUCTS_CSV)
    return lambda: job_create(kind=JobKind.IMPORT_PRODUCTS, params={"path": str(path)})


def send(job: Job, worker: LiveWorker) -> None:
    with through_the_broker():
        import_job_run.apply_async(kwargs={"job_id": job.pk}, queue=worker.queues["default"])


def test_a_killed_pool_process_has_its_job_run_again_to_completion(start_worker, import_job):
    worker = start_worker(queues=("default",), pool="prefork")
    job = import_job()

    with product_locked("P1"):
        send(job, worker)
        wait_until("the import waits for the row", blocked_in_attempt(job, 1), worker)
        first = kill_the_process_running(job)
        # The worker refuses the message of the task its child died in, and takes it again.
        wait_until("the import runs again", blocked_in_attempt(job, 2), worker)
        again = ProcessId.parse(job_now(job).worker)
        assert again is not None
        assert again.pid != first

    wait_until("the job completes", lambda: job_now(job).state == JobState.SUCCEEDED, worker)
    job = job_now(job)
    assert (job.attempts, job.progress, job.error, job.worker) == (2, 100.0, "", "")
    assert job.counts["products"] == {
        "created": 1, "updated": 1, "unchanged": 0, "duplicates": 0,
    }  # fmt: skip
    assert dict(Product.objects.values_list("external_id", "title")) == {
        "P1": "Blue mug (new title)",
        "P2": "Teapot",
    }
    assert "WorkerLostError" in worker.log_text()

    # and a rerun finds everything done
    rerun = import_job()
    send(rerun, worker)
    wait_until("the rerun completes", lambda: job_now(rerun).state == JobState.SUCCEEDED, worker)
    assert job_now(rerun).counts["products"]["unchanged"] == 2
    assert job_now(rerun).attempts == 1


def test_a_step_whose_process_is_killed_every_time_fails_and_a_rerun_succeeds(
    start_worker, import_job
):
    worker = start_worker(queues=("default",), pool="prefork", RECSITE_JOB_MAX_ATTEMPTS="2")
    job = import_job()

    with product_locked("P1"):
        send(job, worker)
        wait_until("the import waits for the row", blocked_in_attempt(job, 1), worker)
        kill_the_process_running(job)
        wait_until("the import runs again", blocked_in_attempt(job, 2), worker)
        kill_the_process_running(job)
        # Its third delivery finds two dead attempts: the job fails, with the reason.
        wait_until("the job fails", lambda: job_now(job).state == JobState.FAILED, worker)

    job = job_now(job)
    assert job.error == (
        "worker lost: step 'import' was started 2 times and its process died each time "
        "(killed, or out of memory?); not started again"
    )
    assert job.attempts == 2

    rerun = import_job()
    send(rerun, worker)
    wait_until("the rerun completes", lambda: job_now(rerun).state == JobState.SUCCEEDED, worker)
    # The killed attempts wrote nothing (the upsert is one transaction).
    assert job_now(rerun).counts["products"] == {
        "created": 1, "updated": 1, "unchanged": 0, "duplicates": 0,
    }  # fmt: skip


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_any_worker_fails_the_job_of_a_dead_one_within_seconds(start_worker, pool):
    """A prefork worker sweeps on its event loop's timer, a solo one in a thread; either fails a
    job whose process is gone (here: one that ran and exited), whatever queue it consumes."""
    child = subprocess.Popen(["sleep", "60"])
    dead = local_process(child.pid)
    child.kill()
    child.wait()
    job = Job.objects.create(
        kind=JobKind.IMPORT_PRODUCTS, state=JobState.RUNNING, step="import", attempts=1,
        worker=str(dead), heartbeat_at=timezone.now() - timedelta(seconds=10),
    )  # fmt: skip

    worker = start_worker(queues=("default",), pool=pool)

    wait_until("the job is failed", lambda: job_now(job).state == JobState.FAILED, worker)
    assert job_now(job).error == (
        f"worker lost: process {dead.pid} on {dead.host} died during step 'import'"
    )
