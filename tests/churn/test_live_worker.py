"""The churn job through the real broker to a live worker process on the cpu queue."""

import pytest

from churn.models import ChurnModelBuild, ChurnScore
from churn.services import churn_job_create
from churn.tasks import churn_job_run
from jobs.choices import JobState
from tests.churn.shop import churn_shop_build
from tests.integration.conftest import start_worker, through_the_broker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["start_worker"]


def test_live_worker_trains_and_scores_a_churn_job(start_worker):
    # Given a shop with a purchase history, a queued churn job and a worker on the cpu queue
    worker = start_worker(queues=("cpu",))
    churn_shop_build()
    job = churn_job_create()

    # When the job goes through the broker to the worker process
    with through_the_broker():
        churn_job_run.apply_async(kwargs={"job_id": job.pk}, queue=worker.queues["cpu"])
    job = wait_for(job, worker, lambda j: j.state == JobState.SUCCEEDED, timeout_s=240)

    # Then the worker trained a model (90-day horizon of the production settings) and scored
    build = ChurnModelBuild.objects.get()
    assert build.horizon_days == 90
    assert job.counts["train"] == {"trained": True, "model_version": build.version}
    assert job.counts["score"]["customers"] == 162
    assert ChurnScore.objects.filter(model_version=build.version).count() == 162
    assert "Task churn.tasks.churn_job_run[" in worker.log_text()
