"""Celery tasks of tagging: thin, id-based, idempotent (gpu queue: it embeds and scores)."""

from celery import shared_task

from recommender.services.jobs import job_step_run

from .jobs import TAG_STEPS


@shared_task(name="tagging.tasks.tag_job_run")
def tag_job_run(*, job_id: int) -> None:
    """Run a tagging job's steps in order. A finished job is skipped, so a redelivery is safe."""
    for step in TAG_STEPS:
        job_step_run(job_id=job_id, step=step.name)
