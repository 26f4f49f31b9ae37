"""Product understanding end to end with the real all-MiniLM-L6-v2 model (no hashing stand-in).

The Amazon Office catalogue (2,420 real products) is imported, embedded by the packaged model
and indexed once for this module; each test then checks one promise on top of it.
"""

import csv

import pytest

from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from jobs.services.runs import job_create, job_run
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord, parse_product
from recommender.models import IndexBuild, Product, ProductEmbedding
from recommender.services import index as index_service
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from recommender.services.ingestion import products_upsert

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker, shared_data_dir, tmp_path_factory):
    """The real catalogue, embedded and indexed by the real model once for the module."""
    from django.conf import settings

    index_dir = tmp_path_factory.mktemp("index")
    previous = settings.RECSITE_EMBEDDER, settings.RECSITE_INDEX_DIR
    settings.RECSITE_EMBEDDER, settings.RECSITE_INDEX_DIR = "transformer", index_dir
    get_embedder.cache_clear()
    index_service.serving_index_reset()
    with django_db_blocker.unblock():
        with open(shared_data_dir / "amazon_office" / "products.csv", newline="") as f:
            records = [parse_product(row, typed=False) for row in csv.DictReader(f)]
        products_upsert(records=records)
        job = job_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk)
    yield job
    with django_db_blocker.unblock():
        for model in (IndexBuild, Job, ProductEmbedding, Product):
            model.objects.all().delete()
    settings.RECSITE_EMBEDDER, settings.RECSITE_INDEX_DIR = previous
    get_embedder.cache_clear()
    index_service.serving_index_reset()


@pytest.fixture(scope="module")
def shared_data_dir():
    from tests.conftest import SHARED_DATA

    return SHARED_DATA


def test_the_reindex_embeds_every_product_with_the_real_model(catalogue, db):
    build = IndexBuild.objects.get(status=BuildStatus.READY)
    assert build.self_check_recall is not None
    assert catalogue.state == JobState.SUCCEEDED
    assert catalogue.counts["embed"]["embedded"] == 2420
    assert (build.item_count, build.dimension, build.model_name) == (2420, 384, "all-MiniLM-L6-v2")
    assert build.self_check_recall >= 0.99


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        # Phrases that are not the titles: the model has to understand them.
        ("label maker with an LCD screen", "B00004VVIX"),  # Brother PT-65 P-touch labeler
        ("shredder for ten sheets, cross cut", "B0092KZ94Q"),  # Fellowes 63Cb 10-sheet
    ],
)
def test_semantic_search_finds_the_product_in_the_top_5(catalogue, read_client, phrase, expected):
    response = read_client.get("/api/v1/products/search", {"q": phrase, "k": 5})

    assert response.status_code == 200
    ids = [r["product"]["product_id"] for r in response.json()["results"]]
    assert len(ids) == 5
    assert expected in ids


def test_similar_products_exclude_the_product_and_share_its_kind(catalogue, read_client):
    response = read_client.get("/api/v1/products/B00004VVIX/similar", {"k": 5})

    results = response.json()["results"]
    assert response.status_code == 200
    assert len(results) == 5
    assert "B00004VVIX" not in [r["product"]["product_id"] for r in results]
    # Every neighbour of a label maker is a label maker or labelling supply.
    assert all("label" in r["product"]["title"].lower() for r in results)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_editing_one_product_re_embeds_exactly_that_one(catalogue, db):
    before = dict(ProductEmbedding.objects.values_list("product__external_id", "text_hash"))
    product = Product.objects.get(external_id="B00004VVIX")
    record = ProductRecord(
        product.external_id, "Brother PT-65 label maker, pink", category=product.category,
        brand=product.brand,
    )  # fmt: skip

    products_upsert(records=[record])
    counts = product_embeddings_refresh()

    after = dict(ProductEmbedding.objects.values_list("product__external_id", "text_hash"))
    assert (counts.products, counts.embedded) == (1, 1)
    assert {pid for pid in before if before[pid] != after[pid]} == {"B00004VVIX"}


def test_an_admin_reindex_through_the_api_reaches_100_percent_with_counts(
    catalogue, admin_client_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_api.post("/api/v1/jobs/reindex")
    job = admin_client_api.get(f"/api/v1/jobs/{response.json()['id']}/").json()

    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert (job["state"], job["progress"], job["triggered_by"]) == ("succeeded", 100.0, "boss")
    assert job["counts"]["embed"]["products"] == 2420
    assert job["counts"]["build"]["items"] == 2420
    assert IndexBuild.objects.filter(status=BuildStatus.READY).count() == 2


@pytest.mark.parametrize("principal", ["merchandiser_client", "read_client", "ingest_client"])
def test_only_admins_may_trigger_a_reindex(catalogue, principal, request):
    client = request.getfixturevalue(principal)

    response = client.post("/api/v1/jobs/reindex")

    assert response.status_code == 403
    assert Job.objects.filter(kind=JobKind.REINDEX).count() == 1
