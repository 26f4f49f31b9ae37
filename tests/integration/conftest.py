"""Live Celery worker processes for integration tests.

A worker runs as a separate process with production settings (not eager), against the same
broker and the same test database as the test, on a queue name of its own so that messages of
other runs never reach it.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from recommender.choices import JobState
from recommender.models import Job
from tests.conftest import REPO_ROOT


def database_url() -> str:
    """The URL of the test database this process is using, for a worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        user = db["USER"] or "postgres"
        return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.fail(f"no worker URL for database vendor {connection.vendor}")


@dataclass
class LiveWorker:
    process: subprocess.Popen
    log: Path
    queues: dict[str, str] = field(default_factory=dict)  # Logical queue → this run's name.

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else "(no worker log)"

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up, as when a machine is lost."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., LiveWorker]]:
    workers: list[LiveWorker] = []

    def start(*, queues: tuple[str, ...] = ("default",), **env_overrides: str) -> LiveWorker:
        suffix = uuid.uuid4().hex[:8]
        names = {queue: f"test-{queue}-{suffix}" for queue in queues}
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
            "DJANGO_SECRET_KEY": "live-worker-test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "RECSITE_VAR_DIR": str(settings.RECSITE_VAR_DIR),
            "RECSITE_INDEX_DIR": str(settings.RECSITE_INDEX_DIR),
            "RECSITE_EMBEDDER": settings.RECSITE_EMBEDDER,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **env_overrides,
        }
        log = tmp_path / f"worker-{suffix}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "recsite", "worker",
             "-Q", ",".join(names.values()), "--pool=solo", "--concurrency=1",
             "--loglevel=INFO", f"--logfile={log}"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = LiveWorker(process=process, log=log, queues=names)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
            try:
                worker.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()


def wait_for(
    job: Job, worker: LiveWorker, until: Callable[[Job], bool], timeout_s: float = 180
) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if until(job):
            return job
        if job.state == JobState.FAILED:
            pytest.fail(f"job {job.pk} failed: {job.error}\nworker log:\n{worker.log_text()}")
        if worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log_text()}")
        time.sleep(0.1)
    pytest.fail(f"job {job.pk} still {job.state} at {job.progress}% after {timeout_s}s;\n"
                f"worker log:\n{worker.log_text()}")  # fmt: skip


@contextmanager
def through_the_broker() -> Iterator[None]:
    """Send tasks to the real broker instead of running them eagerly (the unit-test default).

    Celery reads Django's namespaced key first, so that is the one to switch.
    """
    from recsite.celery import app

    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield
    finally:
        app.conf.CELERY_TASK_ALWAYS_EAGER = True
