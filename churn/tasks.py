"""Celery tasks of churn, on the ``cpu`` queue (routes and the beat entry in settings)."""

from celery import shared_task

from churn import services
from recommender.services import jobs


@shared_task(name="churn.tasks.churn_job_run")
def churn_job_run(*, job_id: int) -> None:
    """Run a churn job: train when needed, then score everyone. A finished job is skipped."""
    jobs.job_step_run(job_id=job_id, step="train")
    jobs.job_step_run(job_id=job_id, step="score")


@shared_task(name="churn.tasks.churn_score_scheduled")
def churn_score_scheduled() -> None:
    """Beat: a churn job like the one an admin starts, recorded in the job history."""
    job = services.churn_job_create()
    churn_job_run(job_id=job.pk)
