"""The Celery application. Configuration lives in Django settings under the ``CELERY_`` prefix.

Two additions to every worker: it looks for jobs whose worker died (:class:`LostJobSweep`), and
in production it logs JSON lines like the web processes (``RECSITE_LOG_FORMAT``).
"""

import logging
import os
import threading
from typing import Any

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")

logger = logging.getLogger(__name__)

app = Celery("recsite", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class LostJobSweep(bootsteps.StartStopStep):
    """Fails the jobs of dead workers (``jobs.services.runs.jobs_fail_lost``) when the
    worker starts and every ``RECSITE_JOB_SWEEP_SECONDS`` after.

    Every worker does it, whatever queues it consumes, so a killed worker's job fails within
    seconds as long as any worker is alive (a restarted one at once), and no sweep ever waits in
    a queue behind the jobs it watches. A prefork worker's main process runs it on its event
    loop's timer (that loop never runs tasks, and no thread sits beside the forks); a solo or
    threads worker, whose loop is busy while a task runs, in a thread of its own.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._entry: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, parent: Any) -> None:
        from celery.concurrency.prefork import TaskPool as PreforkPool
        from django.conf import settings

        interval = settings.RECSITE_JOB_SWEEP_SECONDS
        self._stopping.clear()
        if isinstance(parent.pool, PreforkPool):
            self.sweep()
            self._entry = parent.timer.call_repeatedly(interval, self.sweep)
        else:
            self._thread = threading.Thread(
                target=self._loop, args=(interval,), name="lost-job-sweep", daemon=True
            )
            self._thread.start()

    def stop(self, parent: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        self._stopping.set()

    shutdown = stop

    def _loop(self, interval: float) -> None:
        from django.db import connections

        try:
            self.sweep()
            while not self._stopping.wait(interval):
                self.sweep()
        finally:
            connections.close_all()

    @staticmethod
    def sweep() -> None:
        from django.db import close_old_connections

        from jobs.services.runs import jobs_fail_lost

        try:
            close_old_connections()  # One the database dropped is replaced, not reused.
            jobs_fail_lost()
        except Exception:  # The database may be down: say so, and try again next time.
            logger.exception("Looking for jobs of dead workers failed")


app.steps["consumer"].add(LostJobSweep)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _structured_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """JSON lines on the handlers Celery set up (its console or ``--logfile``) in production."""
    from django.conf import settings

    if settings.RECSITE_LOG_FORMAT == "json":
        from .logs import JsonFormatter

        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
