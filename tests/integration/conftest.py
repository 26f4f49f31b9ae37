"""Live processes for integration tests: Celery workers, gunicorn web servers, an S3 server.

A worker or web server runs as a separate process with production settings (not eager), against
the same broker and the same test database as the test. A worker consumes a queue name of its
own so that messages of other runs never reach it, or the real queue names under a broker key
prefix of its own (``RECSITE_BROKER_KEY_PREFIX``), which is how the topology test lets web
processes route jobs exactly as production does. The S3 server is moto's, a real HTTP server
speaking the S3 protocol, started once per session.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection

from jobs.choices import JobState
from jobs.models import Job
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


def live_env(**overrides: str) -> dict[str, str]:
    """The environment of a live process: production settings on the test's database, broker,
    folders and artifact store."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": "live-process-test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "RECSITE_VAR_DIR": str(settings.RECSITE_VAR_DIR),
        "RECSITE_INDEX_DIR": str(settings.RECSITE_INDEX_DIR),
        "RECSITE_ARTIFACT_STORE": settings.RECSITE_ARTIFACT_STORE,
        "RECSITE_ARTIFACT_DIR": str(settings.RECSITE_ARTIFACT_DIR),
        "RECSITE_ARTIFACT_CACHE_DIR": str(settings.RECSITE_ARTIFACT_CACHE_DIR),
        "RECSITE_EMBEDDER": settings.RECSITE_EMBEDDER,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **overrides,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., LiveWorker]]:
    workers: list[LiveWorker] = []

    def start(
        *, queues: tuple[str, ...] = ("default",), real_queue_names: bool = False,
        pool: str = "solo", **env_overrides: str,
    ) -> LiveWorker:  # fmt: skip
        """``real_queue_names``: consume ``queues`` as named; the caller isolates the run with
        ``RECSITE_BROKER_KEY_PREFIX`` in ``env_overrides``. ``pool``: ``solo`` (the task runs in
        the worker's own process) or ``prefork`` (in one child process the worker watches)."""
        suffix = uuid.uuid4().hex[:8]
        if real_queue_names:
            names = {queue: queue for queue in queues}
        else:
            names = {queue: f"test-{queue}-{suffix}" for queue in queues}
        env = live_env(**env_overrides)
        log = tmp_path / f"worker-{suffix}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "recsite", "worker",
             "-Q", ",".join(names.values()), f"--pool={pool}", "--concurrency=1",
             "--loglevel=INFO", f"--logfile={log}"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = LiveWorker(process=process, log=log, queues=names)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        _stop(worker.process)


@dataclass
class LiveWeb:
    """A gunicorn master (with ``gunicorn.conf.py``: preloaded, rolling its workers) on a port
    of its own."""

    process: subprocess.Popen
    port: int
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else "(no gunicorn log)"

    def serving(self) -> dict[str, Any]:
        """What the worker that answers serves (GET /health/serving)."""
        response = requests.get(self.url("/health/serving"), timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def wait_until_up(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.url("/health/live"), timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # Listening before its worker answers: the master binds first.
            time.sleep(0.1)
        pytest.fail(f"gunicorn not answering after {timeout_s}s:\n{self.log_text()}")


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator[Callable[..., LiveWeb]]:
    webs: list[LiveWeb] = []

    def start(*, workers: int = 1, **env_overrides: str) -> LiveWeb:
        """Start a web server; call ``wait_until_up`` before using it."""
        port = free_port()
        log = tmp_path / f"web-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "recsite.wsgi",
                 "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
                cwd=REPO_ROOT, env=live_env(**env_overrides), stdout=sink,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        web = LiveWeb(process=process, port=port, log=log)
        webs.append(web)
        return web

    yield start
    for web in webs:
        _stop(web.process)  # The master stops its workers and its build watcher.


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free port (a separate process); yields its endpoint URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the S3 server did not start:\n{log.read_text()}")
            time.sleep(0.1)
    yield endpoint
    _stop(process)


S3_KEYS = {"access_key": "recsite-test", "secret_key": "recsite-test-secret"}


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str
    name: str
    prefix: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=S3_KEYS["access_key"],
            aws_secret_access_key=S3_KEYS["secret_key"],
        )  # fmt: skip

    def object_keys(self) -> list[str]:
        """Every object key in the bucket, sorted."""
        listing = self.client().list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def storage_options(self) -> dict[str, Any]:
        return {
            "bucket_name": self.name, "location": self.prefix, "endpoint_url": self.endpoint,
            "region_name": "us-east-1", "access_key": S3_KEYS["access_key"],
            "secret_key": S3_KEYS["secret_key"], "default_acl": None, "file_overwrite": True,
            "querystring_auth": False,
        }  # fmt: skip

    def env(self, *, cache_dir: Path) -> dict[str, str]:
        """The environment that points a live process at this bucket, as production does."""
        return {
            "RECSITE_ARTIFACT_STORE": "s3", "RECSITE_ARTIFACT_S3_BUCKET": self.name,
            "RECSITE_ARTIFACT_S3_PREFIX": self.prefix,
            "RECSITE_ARTIFACT_S3_ENDPOINT_URL": self.endpoint,
            "RECSITE_ARTIFACT_S3_REGION": "us-east-1",
            "RECSITE_ARTIFACT_S3_ACCESS_KEY_ID": S3_KEYS["access_key"],
            "RECSITE_ARTIFACT_S3_SECRET_ACCESS_KEY": S3_KEYS["secret_key"],
            "RECSITE_ARTIFACT_CACHE_DIR": str(cache_dir),
        }  # fmt: skip


@pytest.fixture
def s3_bucket(s3_server: str, settings: Any, tmp_path: Path) -> S3Bucket:
    """A fresh bucket on the S3 server, configured as this process's artifact store."""
    bucket = S3Bucket(endpoint=s3_server, name=f"recsite-{uuid.uuid4().hex[:12]}", prefix="art")
    bucket.client().create_bucket(Bucket=bucket.name)
    settings.RECSITE_ARTIFACT_STORE = "s3"
    settings.RECSITE_ARTIFACT_CACHE_DIR = tmp_path / "cache-here"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": bucket.storage_options(),
        },
    }
    return bucket


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
