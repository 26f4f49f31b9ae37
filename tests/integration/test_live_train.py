"""A train job through the broker, as the API and the nightly refresh start it: the fit on the
``cpu`` queue, then the sequential model on the ``gpu`` queue (the CPU here), in a live worker
process on the configured database and broker (PostgreSQL and Redis in CI), with the job's
progress visible while it runs."""

import pytest

from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from jobs.services.runs import job_create
from recommender.choices import JobKind
from recommender.models import EngineBuild, SequentialBuild
from recommender.tasks import train_signature
from tests.recommender.sequential_shop import N_CUSTOMERS, N_PRODUCTS, ordered_shop_build
from tests.recommender.shop import fresh_serving  # noqa: F401 (a fixture)

from .conftest import through_the_broker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_live_worker_runs_the_train_job_to_its_sequential_step(
    start_worker,
    fresh_serving,  # noqa: F811 (the fixture imported above)
):
    # given a shop with an order in it, its first engine build, and a worker on both queues
    ordered_shop_build()
    worker = start_worker(
        queues=("cpu", "gpu"), RECSITE_SEQUENTIAL="auto", RECSITE_SEQUENTIAL_MAX_EPOCHS="3"
    )
    job = job_create(kind=JobKind.TRAIN, params={"source": "test"})
    chain = train_signature(job_id=job.pk)
    for task, queue in zip(chain.tasks, ("cpu", "gpu"), strict=True):
        task.set(queue=worker.queues[queue])

    # when the chain goes through the broker
    seen: list[tuple[str, float]] = []

    def done(j: Job) -> bool:
        seen.append((j.state, j.progress))
        return j.state == JobState.SUCCEEDED

    with through_the_broker():
        chain.apply_async()
    job = wait_for(job, worker, done, timeout_s=180)

    # then the worker ran the four steps in order and recorded each
    assert set(job.counts) == {"autotune", "fit", "tuning-sample", "sequential"}
    assert (job.progress, job.error) == (100.0, "")
    build = SequentialBuild.objects.get()
    assert (build.status, build.job_id, build.item_count) == (BuildStatus.READY, job.pk, N_PRODUCTS)
    assert build.customer_count == N_CUSTOMERS
    assert job.counts["sequential"]["sequential_build"] == build.pk
    newest = EngineBuild.objects.order_by("-pk").first()
    assert newest is not None
    assert job.counts["fit"]["engine_build"] == newest.pk
    # its progress was visible between the start and the end
    assert any(state == JobState.RUNNING and 0 < p < 100 for state, p in seen)
    # and both tasks were taken from the broker by the worker process
    log = worker.log_text()
    assert "Task recommender.tasks.engine_train[" in log
    assert "Task recommender.tasks.sequential_train[" in log
