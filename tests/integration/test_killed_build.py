"""A worker killed in the middle of an index build: the previous index keeps serving, the job is
failed once its worker is known to be lost, and a rerun completes. Real model, live worker."""

import csv
from datetime import timedelta

import pytest
from celery import chain
from django.utils import timezone

from recommender.choices import BuildStatus, JobKind, JobState
from recommender.ingestion.records import parse_product
from recommender.models import IndexBuild
from recommender.services import index as index_service
from recommender.services.embeddings import get_embedder
from recommender.services.ingestion import products_upsert
from recommender.services.jobs import job_create, job_run, jobs_fail_stale
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
    real_model_catalogue, start_worker
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
    assert half.status == BuildStatus.BUILDING
    assert index_service.index_build_latest_ready() == serving
    assert index_service.serving_index().build_id == serving.pk
    assert _labeler_found()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING  # Nobody is left to say otherwise ...

    # ... until the stale-job sweep notices the worker is gone
    assert jobs_fail_stale(now=timezone.now() + timedelta(minutes=16)) == 1
    job.refresh_from_db()
    half.refresh_from_db()
    assert (job.state, half.status) == (JobState.FAILED, BuildStatus.FAILED)
    assert job.error == "worker lost: no progress for 15 minutes"

    # and a rerun completes and takes over
    rerun = job_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk)
    latest = index_service.index_build_latest_ready()
    assert rerun.state == JobState.SUCCEEDED
    assert latest is not None
    assert latest.job == rerun
    assert latest.item_count == 2420
    assert index_service.serving_index().build_id == latest.pk
    assert _labeler_found()
