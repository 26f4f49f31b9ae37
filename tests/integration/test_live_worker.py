"""A real Celery worker process consumes a job from the configured broker and writes to the
configured database (Redis and PostgreSQL in CI; the filesystem broker and SQLite embedded)."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from recommender.choices import JobKind, JobState
from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, Event, Job, Product
from recommender.services.ingestion import products_upsert
from recommender.services.jobs import job_create
from recommender.tasks import import_job_run
from recsite.celery import app as celery_app
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVENTS_CSV = """event_id,customer_id,product_id,event_type,timestamp,quantity,value
w-1,c1,P1,view,2024-03-01T10:00:00Z,1,
w-2,c1,P1,purchase,2024-03-01T10:05:00Z,2,19.80
w-3,c2,P2,add_to_cart,2024-03-02T09:00:00Z,1,
"""


def _database_url() -> str:
    """The URL of the test database this test process is using, for the worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        user = db["USER"] or "postgres"
        return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.fail(f"no worker URL for database vendor {connection.vendor}")


@pytest.fixture
def live_worker(tmp_path: Path):
    """Start `celery worker` on a queue of its own; stop it afterwards."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": "live-worker-test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "RECSITE_VAR_DIR": str(settings.RECSITE_VAR_DIR),
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "recsite", "worker", "-Q", queue,
         "--pool=solo", "--concurrency=1", "--loglevel=INFO", f"--logfile={log}"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield queue, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_final_state(job: Job, log: Path, timeout_s: float = 90) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in (JobState.SUCCEEDED, JobState.FAILED):
            return job
        time.sleep(0.3)
    worker_log = log.read_text() if log.exists() else "(no worker log)"
    pytest.fail(f"job {job.pk} still {job.state} after {timeout_s}s; worker log:\n{worker_log}")


def test_live_worker_runs_an_import_job_from_the_broker(live_worker, tmp_path):
    # given a catalogue, an events file and a queued job
    queue, log = live_worker
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])
    events_file = tmp_path / "events.csv"
    events_file.write_text(EVENTS_CSV)
    job = job_create(kind=JobKind.IMPORT_EVENTS, params={"path": str(events_file)})

    # when the job goes through the broker to the worker process
    celery_app.conf.task_always_eager = False
    try:
        import_job_run.apply_async(kwargs={"job_id": job.pk}, queue=queue)
    finally:
        celery_app.conf.task_always_eager = True
    job = _wait_for_final_state(job, log)

    # then the worker wrote the events and the job record
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.progress == 100.0
    assert job.counts["created"] == 3
    assert job.counts["rejected"] == 0
    assert job.started_at is not None
    assert job.finished_at is not None
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["c1", "c2"]
    assert sorted(Event.objects.values_list("event_id", "product__external_id")) == [
        ("w-1", "P1"), ("w-2", "P1"), ("w-3", "P2"),
    ]  # fmt: skip
    assert Product.objects.count() == 2
    # and the worker really is a separate process that consumed the message
    assert "Task recommender.tasks.import_job_run[" in log.read_text()
