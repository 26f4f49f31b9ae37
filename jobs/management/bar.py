"""What the job commands share: run a job here or follow it on the workers, with a progress bar."""

from typing import Any, TextIO

from celery.canvas import Signature
from django.core.management.base import CommandError
from tqdm import tqdm

from jobs.models import Job
from jobs.services.runs import JobFailed, job_run_or_follow


def job_run_with_bar(
    job: Job,
    *,
    name: str,
    enqueue: Signature | None,
    progress: bool,
    stream: Any,
) -> Job:
    """Run ``job`` in this process, or enqueue ``enqueue`` (the signature that runs it on the
    workers) once the transaction commits and follow it, showing a
    0-100 % bar on ``stream`` (a command's stderr) unless ``progress`` is off.

    A failed job is a :class:`CommandError` naming the job and its error.
    """
    # A command's stderr is an OutputWrapper; tqdm writes to the stream it wraps.
    file: TextIO = getattr(stream, "_out", stream)
    with tqdm(
        total=100, unit="%", desc=f"{name} (job {job.pk})", file=file, disable=not progress
    ) as bar:

        def echo(fraction: float) -> None:
            bar.update(max(0, round(fraction * 100) - bar.n))

        try:
            done = job_run_or_follow(job=job, name=name, enqueue=enqueue, echo=echo)
        except JobFailed as exc:
            raise CommandError(str(exc)) from exc
        # A step that reports no progress of its own (the tuning sample) still ends the job.
        bar.update(100 - bar.n)
        return done
