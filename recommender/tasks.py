"""Celery tasks: thin, id-based, idempotent. Each calls one service."""

from celery import shared_task

from recommender.services import jobs


@shared_task(name="recommender.tasks.import_job_run")
def import_job_run(*, job_id: int) -> None:
    """Run one import job. Safe to run twice: a finished job is skipped, imports are idempotent."""
    jobs.job_run(job_id=job_id)
