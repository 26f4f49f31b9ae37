"""Celery tasks: thin, id-based, idempotent. Each calls one service.

Queues (routes in settings): ``default`` for ingestion jobs and housekeeping, ``gpu`` for
embedding and the sequential model, ``cpu`` for index builds and fits. Interfaces start a reindex
with :func:`reindex_signature` and a train job with :func:`train_signature`.
"""

import logging

from celery import chain, shared_task
from celery.canvas import Signature

from jobs.services.runs import delay_on_commit, job_create, job_signature, job_steps_run
from recommender.choices import JobKind
from recommender.services import activity, embeddings, refresh

logger = logging.getLogger(__name__)


@shared_task(name="recommender.tasks.import_job_run")
def import_job_run(*, job_id: int) -> None:
    """Run one import job. Safe to run twice: a finished job is skipped, imports are idempotent."""
    job_steps_run(job_id=job_id)


@shared_task(name="recommender.tasks.reindex_embed")
def reindex_embed(*, job_id: int) -> None:
    """Reindex step 1 (gpu queue): embed new and changed products."""
    job_steps_run(job_id=job_id, steps=("embed",))


@shared_task(name="recommender.tasks.reindex_build")
def reindex_build(*, job_id: int) -> None:
    """Reindex step 2 (cpu queue): build, check and publish a new index."""
    job_steps_run(job_id=job_id, steps=("build",))


def reindex_signature(*, job_id: int) -> Signature:
    """Embed on the gpu queue, then build on the cpu queue; a failed step stops the chain."""
    return chain(reindex_embed.si(job_id=job_id), reindex_build.si(job_id=job_id))


@shared_task(name="recommender.tasks.engine_train")
def engine_train(*, job_id: int) -> None:
    """Train job, steps 1 to 3 (cpu queue): the automatic tuning, the fit of the recommendation
    engine and its publication, and the tuning page's metric sample of it."""
    job_steps_run(job_id=job_id, steps=("autotune", "fit", "tuning-sample"))


@shared_task(name="recommender.tasks.sequential_train")
def sequential_train(*, job_id: int) -> None:
    """Train job, last step (gpu queue; the CPU where there is no GPU): the sequential model."""
    job_steps_run(job_id=job_id, steps=("sequential",))


def train_signature(*, job_id: int) -> Signature:
    """Fit on the cpu queue, then the sequential model on the gpu queue; a failed step stops
    the chain (the engine build it published serves either way)."""
    return chain(engine_train.si(job_id=job_id), sequential_train.si(job_id=job_id))


@shared_task(name="recommender.tasks.evaluate")
def evaluate(*, job_id: int) -> None:
    """Evaluate job (cpu queue): offline metrics of the active configuration on a sample."""
    job_steps_run(job_id=job_id)


@shared_task(name="recommender.tasks.product_embeddings_sweep")
def product_embeddings_sweep() -> None:
    """Beat: embed products flagged stale since the last sweep (the side buffer serves them)."""
    embeddings.product_embeddings_refresh()


@shared_task(name="recommender.tasks.product_counts_refresh")
def product_counts_refresh() -> None:
    """Beat: add the events stored since the last run to the per-product counts."""
    activity.product_counts_refresh()


@shared_task(name="recommender.tasks.refresh_scheduled")
def refresh_scheduled() -> None:
    """Beat, nightly: queue a reindex and/or a train job for what changed since the last ones
    (``recommender.services.refresh``); nothing when nothing did."""
    plan = refresh.refresh_plan()
    if not plan:
        logger.info("Nightly refresh: nothing to do (%s)", "; ".join(plan.reasons) or "current")
        return
    params = {"source": "schedule", "reasons": list(plan.reasons)}
    # One chain, so a train waits for the reindex before it (both jobs are queued at once).
    steps: list[Signature] = []
    if plan.reindex:
        reindex = job_create(kind=JobKind.REINDEX, params=params)
        steps.append(job_signature(reindex_signature, job_id=reindex.pk))
    if plan.train:
        train = job_create(kind=JobKind.TRAIN, params=params)
        steps.append(job_signature(train_signature, job_id=train.pk))
    logger.info("Nightly refresh: %s", "; ".join(plan.reasons))
    delay_on_commit(chain(*steps))
