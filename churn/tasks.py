"""Celery tasks of churn, on the ``cpu`` queue (routes and the beat entry in settings)."""

from celery import shared_task

from churn import services
from churn.models import ChurnJobKind
from jobs.services.runs import job_start, job_steps_run


@shared_task(name="churn.tasks.churn_job_run")
def churn_job_run(*, job_id: int) -> None:
    """Run a churn job: train when needed, then score everyone. A finished job is skipped."""
    job_steps_run(job_id=job_id)


@shared_task(name="churn.tasks.churn_score_scheduled")
def churn_score_scheduled() -> None:
    """Beat: a churn job like the one an admin starts, recorded in the job history."""
    job_start(kind=ChurnJobKind.CHURN_SCORE, task=churn_job_run, params=services.churn_job_params())
