"""The production topology on one machine: two web processes (gunicorn with gunicorn.conf.py:
preloaded, rolling their workers on new builds) and two Celery workers (one consuming ``gpu``,
one ``cpu`` and ``default``), sharing PostgreSQL, Redis and an artifact store (a shared folder,
or an S3 server with a separate cache folder per process, as separate hosts have).

A product added through one web process and a reindex requested on the other run on the
workers (embedding on ``gpu``, the build on ``cpu``), and the build they publish is then served
by both web processes, which answer search and similar-products requests with it exactly.
"""

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import requests

from accounts.roles import Role
from accounts.services import api_token_create, user_create_with_role
from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from jobs.services.runs import job_create, job_run
from recommender.choices import JobKind
from recommender.models import IndexBuild, ProductEmbedding
from recommender.services import index as index_service
from recommender.services.embeddings import get_embedder
from recommender.services.ingestion import products_upsert
from tests.recommender.shop import CATALOGUE

from .conftest import LiveWeb, LiveWorker, S3Bucket, free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NEW = {"product_id": "INK-9", "title": "Brother printer ink multipack", "category": "Office"}
QUERY = "brother ink multipack"
PASSWORD = "topology-pass-123"
TIMEOUT_S = 60

StoreEnv = Callable[[str], dict[str, str]]


@pytest.fixture(params=["filesystem", "s3"])
def store(request, settings, tmp_path) -> StoreEnv:
    """The environment of a process on host ``name``: one shared folder for every host, or one
    bucket with a cache folder per host."""
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    if request.param == "filesystem":
        settings.RECSITE_ARTIFACT_DIR = str(tmp_path / "shared-artifacts")
        return lambda name: {}
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return lambda name: bucket.env(cache_dir=tmp_path / f"cache-{name}")


@pytest.fixture
def indexed_shop(store):
    """The catalogue embedded and indexed once, in this process (the first build)."""
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    products_upsert(records=CATALOGUE)
    job = job_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk)
    assert job.state == JobState.SUCCEEDED
    yield IndexBuild.objects.get(status=BuildStatus.READY)
    index_service.serving_index_reset()


def _exact_nearest(vector: np.ndarray, *, k: int, exclude: str = "") -> list[str]:
    """The oracle: brute-force cosine ranking over every stored vector."""
    rows = ProductEmbedding.objects.select_related("product").order_by("product__external_id")
    ids = [r.product.external_id for r in rows if r.product.external_id != exclude]
    matrix = np.vstack(
        [np.frombuffer(r.vector, dtype="<f4") for r in rows if r.product.external_id != exclude]
    )
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = matrix @ (vector / np.linalg.norm(vector))
    order = np.lexsort((np.arange(len(ids)), -scores))[:k]
    return [ids[i] for i in order]


def _admin_session(web: LiveWeb) -> requests.Session:
    session = requests.Session()
    session.get(web.url("/accounts/login/"), timeout=10)
    response = session.post(
        web.url("/accounts/login/"),
        data={
            "username": "ops",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=10,
    )
    assert (response.status_code, response.url) == (200, web.url("/dashboard/"))
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


def _wait_for_job(job_id: int, workers: list[LiveWorker]) -> Job:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in (JobState.SUCCEEDED, JobState.FAILED):
            break
        time.sleep(0.2)
    logs = "\n".join(w.log_text() for w in workers)
    assert job.state == JobState.SUCCEEDED, f"job {job_id}: {job.state} {job.error}\n{logs}"
    return job


def _wait_for_roll(web: LiveWeb, build_id: int) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    status: dict = {}
    while time.monotonic() < deadline:
        status = web.serving()
        if status["builds"].get("index", {}).get("id") == build_id:
            return status
        time.sleep(0.2)
    pytest.fail(f"port {web.port} still serves {status} after {TIMEOUT_S}s:\n{web.log_text()}")


def test_a_reindex_published_by_one_worker_is_served_by_both_web_processes(
    indexed_shop, store, start_worker, start_web, settings, tmp_path
):
    # given the first build, an admin, and tokens for the shop's back end
    first = indexed_shop
    # The web processes run production settings: the password must use a production hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user_create_with_role(username="ops", password=PASSWORD, role=Role.ADMIN)
    _, ingest = api_token_create(name="shop-ingest", scopes=["ingest"])
    _, read = api_token_create(name="shop-read", scopes=["read"])
    # ... and the topology: a gpu worker, a cpu + default worker, two web processes, all on the
    # real queue names under a broker key prefix of this run
    common = {
        "RECSITE_BROKER_KEY_PREFIX": f"topology-{uuid.uuid4().hex[:8]}:",
        "RECSITE_INDEX_REFRESH_SECONDS": "0.5",
    }
    gpu = start_worker(queues=("gpu",), real_queue_names=True, **common, **store("gpu"))
    cpu = start_worker(queues=("cpu", "default"), real_queue_names=True, **common, **store("cpu"))
    web_a = start_web(**common, **store("web-a"))
    web_b = start_web(**common, **store("web-b"))
    for web in (web_a, web_b):
        web.wait_until_up()
    before = {web.port: web.serving() for web in (web_a, web_b)}
    for status in before.values():
        assert (status["mode"], status["builds"]["index"]) == (
            "inherited",
            {"id": first.pk, "loaded_by": "master"},
        )

    # when the shop adds a product through web B ...
    added = requests.post(
        web_b.url("/api/v1/products/batch"),
        json={"items": [NEW]},
        headers={"Authorization": f"Bearer {ingest}"},
        timeout=30,
    )
    assert added.status_code == 200, added.text
    assert (added.json()["created"], added.json()["updated"]) == (1, 0)
    # ... and an admin starts a reindex on web A, which the workers run
    started = _admin_session(web_a).post(web_a.url("/api/v1/jobs/reindex"), timeout=30)
    assert started.status_code == 202, started.text
    job = _wait_for_job(started.json()["id"], [gpu, cpu])

    # then the cpu worker published a second build with the new product, after the gpu worker
    # embedded it
    second = IndexBuild.objects.get(job=job)
    assert (second.status, second.item_count) == (BuildStatus.READY, len(CATALOGUE) + 1)
    assert "Task recommender.tasks.reindex_embed[" in gpu.log_text()
    assert "Task recommender.tasks.reindex_build[" in cpu.log_text()
    assert "reindex_build" not in gpu.log_text()
    assert "reindex_embed" not in cpu.log_text()

    # and both web processes rolled to it: fresh workers, inheriting it from their master
    for web in (web_a, web_b):
        status = _wait_for_roll(web, second.pk)
        assert status["pid"] != before[web.port]["pid"]
        assert (status["mode"], status["builds"]["index"], status["pending"]) == (
            "inherited",
            {"id": second.pk, "loaded_by": "master"},
            {},
        )

    # and both answer with it, exactly as brute force over every vector ranks
    new_vector = np.frombuffer(
        ProductEmbedding.objects.get(product__external_id="INK-9").vector, dtype="<f4"
    )
    query_vector = get_embedder().embed([QUERY])[0]
    expected_search = _exact_nearest(query_vector, k=3)
    expected_similar = _exact_nearest(new_vector, k=3, exclude="INK-9")
    assert expected_search[0] == "INK-9"
    read_headers = {"Authorization": f"Bearer {read}"}
    for web in (web_a, web_b):
        search = requests.get(
            web.url("/api/v1/products/search"),
            params={"q": QUERY, "k": "3"},
            headers=read_headers,
            timeout=30,
        )
        similar = requests.get(
            web.url("/api/v1/products/INK-9/similar"),
            params={"k": 3},
            headers=read_headers,
            timeout=30,
        )
        assert (search.status_code, similar.status_code) == (200, 200)
        assert [r["product"]["product_id"] for r in search.json()["results"]] == expected_search
        assert [r["product"]["product_id"] for r in similar.json()["results"]] == expected_similar

    # and with object storage, each web host downloaded the new build into its own cache
    if settings.RECSITE_ARTIFACT_STORE == "s3":
        name = second.path.rsplit("/", 1)[1]
        for host in ("web-a", "web-b", "cpu"):
            cached = sorted(p.name for p in (tmp_path / f"cache-{host}" / "index").iterdir())
            assert name in cached, host
    else:
        assert Path(second.path).parent == Path(settings.RECSITE_ARTIFACT_DIR) / "index"


def test_a_web_process_whose_store_is_unreachable_refuses_to_start(start_web, settings):
    # given a store endpoint nobody answers on
    nobody = f"http://127.0.0.1:{free_port()}"

    # when a web process starts with it
    web = start_web(
        RECSITE_ARTIFACT_STORE="s3",
        RECSITE_ARTIFACT_S3_BUCKET="shop-artifacts",
        RECSITE_ARTIFACT_S3_ENDPOINT_URL=nobody,
        RECSITE_ARTIFACT_S3_ACCESS_KEY_ID="key",
        RECSITE_ARTIFACT_S3_SECRET_ACCESS_KEY="secret",
    )

    # then its master stops before forking a worker, saying why
    assert web.process.wait(timeout=TIMEOUT_S) == 1
    assert (
        "Cannot preload the serving artifacts: ArtifactStoreError: S3 store "
        f"s3://shop-artifacts/recsite at {nobody} is not usable: the endpoint is unreachable "
        "(RECSITE_ARTIFACT_S3_ENDPOINT_URL)"
    ) in web.log_text()
    assert "Booting worker" not in web.log_text()
