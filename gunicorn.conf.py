"""gunicorn configuration for recsite's web processes (read from the working directory).

    gunicorn -c gunicorn.conf.py recsite.wsgi --bind 0.0.0.0:8000 --workers 4

The master preloads the application and the serving artifacts (the vector index and the
engine) before it forks, so the workers share one copy of them, and rolls the workers when newer
builds are published. Memory model, sizing and failure behaviour: docs/deployment.md.
"""

import gc
import os
import shutil
import tempfile
from typing import Any

# Prometheus (GET /metrics): each worker writes its counters to files in this folder and a scrape
# sums them, so it sees the whole server whichever worker answers (prometheus_client's multiprocess
# mode). Set before anything imports prometheus_client. An operator's folder must be emptied
# before each start; the default is a fresh one, removed when the server stops.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recsite-metrics-")

from recsite.gunicorn_serving import on_exit as _serving_on_exit  # noqa: E402
from recsite.gunicorn_serving import on_reload, post_fork, when_ready  # noqa: E402

__all__ = ["child_exit", "on_exit", "on_reload", "post_fork", "when_ready"]


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # Its live gauges go; its counters stay summed.


def on_exit(server: Any) -> None:
    _serving_on_exit(server)
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# gunicorn's own logs (errors, access) in the format of the application's (RECSITE_LOG_FORMAT).
logger_class = "recsite.logs.GunicornLogger"

# Load Django and the serving artifacts once, in the master, then fork.
preload_app = True
# The sync worker, one woken per connection, answering the requests gunicorn refuses itself in
# JSON, like the API (recsite/gunicorn_worker.py).
worker_class = "recsite.gunicorn_worker.RecsiteSyncWorker"
# gunicorn's largest request line (4094 by default): the longest query strings the OpenAPI
# document allows fit; a longer line gets 400 {"detail": ...}.
limit_request_line = 8190
# WEB_CONCURRENCY is gunicorn's usual variable; --workers on the command line wins.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Workers heartbeat through a file: on tmpfs, a slow disk never makes them look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# A request that takes longer than this is killed; old workers get this long to finish theirs
# when a roll retires them.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))

# No cyclic garbage collection in the master: it would leave freed holes in pages the workers
# share. post_fork turns it back on in each worker; the master collects once before freezing.
gc.disable()
