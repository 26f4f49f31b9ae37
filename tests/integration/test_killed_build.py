"""A worker killed in the middle of an index build (the whole worker, as when its machine is
lost): the previous index keeps serving, another worker fails the job within seconds, the jobs
page says why, and a rerun completes. Real model, live workers."""

import csv
import html
import time

import pytest
from celery import chain
from django.test import Client
from django.urls import reverse

from jobs.choices import BuildStatus, JobState
from jobs.liveness import ProcessId
from jobs.services.runs import job_create, job_run
from recommender.choices import JobKind
from recommender.ingestion.records import parse_product
from recommender.models import IndexBuild
from recommender.services import index as index_service
from recommender.services.embeddings import get_embedder
from recommender.services.ingestion import products_upsert
from recommender.services.search import product_search
from recommender.tasks import reindex_build, reindex_embed
from tests.conftest import SHARED_DATA

from .conftest import through_the_broker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def real_model_catalogue(settings, tmp_path):
    settings.RECSITE_EMBEDDER = "transformer"
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    with open(SHARED_DATA / "amazon_office" / "products.csv", newline="") as f:
        products_upsert(records=[parse_product(row, typed=False) for row in csv.DictReader(f)])
    yield
    get_embedder.cache_clear()
    index_service.serving_index_reset()


def _labeler_found() -> bool:
    return "B00004VVIX" in [
        p.external_id for p, _ in product_search(query="label maker with an LCD screen", k=5)
    ]


def test_a_worker_killed_mid_build_leaves_the_previous_index_serving(
    real_model_catalogue, start_worker, admin_user
):
    # given a first index, built and serving
    first = job_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk)
    serving = IndexBuild.objects.get(status=BuildStatus.READY)
    assert first.state == JobState.SUCCEEDED
    assert _labeler_found()

    # when a reindex runs on a worker that is killed while it builds the graph (a large
    # ef_construction makes the build long enough to be caught in the middle)
    worker = start_worker(
        queues=("gpu", "cpu"), RECSITE_INDEX_M="64", RECSITE_INDEX_EF_CONSTRUCTION="4000"
    )
    sweeper = start_worker(queues=("default",))
    job = job_create(kind=JobKind.REINDEX, params={})
    with through_the_broker():
        chain(
            reindex_embed.si(job_id=job.pk).set(queue=worker.queues["gpu"]),
            reindex_build.si(job_id=job.pk).set(queue=worker.queues["cpu"]),
        ).apply_async()
    wait_for(
        job,
        worker,
        lambda j: IndexBuild.objects.filter(job=j, status=BuildStatus.BUILDING).exists()
        and j.progress >= 84.0,
    )
    worker.kill()

    # then the half-made build never became visible and the old index still answers
    half = IndexBuild.objects.get(job=job)
    assert half.status != BuildStatus.READY
    assert index_service.index_build_latest_ready() == serving
    assert index_service.serving_index().build_id == serving.pk
    assert _labeler_found()

    # ... and another worker (any queue: every worker looks for lost jobs) fails the job within
    # seconds, with its half-made build
    deadline = time.monotonic() + 30
    while job.state == JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    half.refresh_from_db()
    process = ProcessId.parse(job.worker)
    assert process is not None
    assert process.pid == worker.process.pid  # The solo worker ran the step itself.
    message = f"worker lost: process {process.pid} on {process.host} died during step 'build'"
    assert (job.state, job.error) == (JobState.FAILED, message), sweeper.log_text()
    assert (half.status, half.error) == (BuildStatus.FAILED, message)
    assert f"Job {job.pk} (reindex) failed: {message}" in sweeper.log_text()

    # and the jobs page says so
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("dashboard:jobs-history"))
    assert message in html.unescape(page.content.decode())

    # and a rerun completes and takes over
    rerun = job_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk)
    latest = index_service.index_build_latest_ready()
    assert rerun.state == JobState.SUCCEEDED
    assert latest is not None
    assert latest.job == rerun
    assert latest.item_count == 2420
    assert index_service.serving_index().build_id == latest.pk
    assert _labeler_found()
