"""Celery tasks of tagging: thin, id-based, idempotent (gpu queue: it embeds and scores)."""

import logging

from celery import shared_task

from jobs.services.runs import job_start, job_steps_run

from .models import TaggingJobKind
from .services import tagging_new_reasons

logger = logging.getLogger(__name__)


@shared_task(name="tagging.tasks.tag_job_run")
def tag_job_run(*, job_id: int) -> None:
    """Run a tagging job's steps in order. A finished job is skipped, so a redelivery is safe."""
    job_steps_run(job_id=job_id)


@shared_task(name="tagging.tasks.tag_new_scheduled")
def tag_new_scheduled() -> None:
    """Beat, nightly: suggest tags for products added or edited since the last tagging job (a
    job like the one an admin starts with ``only_new``); nothing when none were."""
    reasons = tagging_new_reasons()
    if not reasons:
        logger.info("Nightly tagging: nothing new to tag")
        return
    job_start(
        kind=TaggingJobKind.TAG,
        task=tag_job_run,
        params={"only_new": True, "source": "schedule", "reasons": list(reasons)},
    )
