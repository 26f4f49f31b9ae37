"""Acceptance: a customer of the demo data is forgotten, and after the purge job on a live worker
no row, artifact file or log line holds their id, the next list of a similar customer is the one
an engine that never saw them gives, and the job records when it was fully applied."""

from datetime import datetime
from pathlib import Path

import pytest
from django.db.models import Count
from rest_framework.test import APIClient

from accounts.services import api_token_create
from jobs.choices import BuildStatus, JobState
from privacy.models import ForgetRequest
from privacy.services.checks import customer_check
from privacy.services.forgetting import purge_job_create
from privacy.tasks import privacy_purge_run
from recommender.models import Customer, EngineBuild, Event, Product
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.imports import online_retail_import_file
from recommender.services.index import vector_index_build
from recommender.services.recommendations import engine_build, serving_engine_reset
from recommender.services.tuning import tuning_sample
from tests.integration.conftest import start_worker, through_the_broker, wait_for
from tests.privacy.dump import database_dump, holding, text_values
from tests.privacy.test_pseudonyms import _retail_slice

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["start_worker"]


def _client(*scopes):
    _, raw = api_token_create(name="shop", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _pick_customers() -> tuple[str, str]:
    """The most active customer whose id names no product, and the customer who bought most of
    the same products."""
    products = set(Product.objects.values_list("external_id", flat=True))
    ranked = Customer.objects.annotate(n=Count("events")).order_by("-n", "external_id")
    forgotten = next(c for c in ranked if c.external_id not in products)
    theirs = set(Event.objects.filter(customer=forgotten).values_list("product_id", flat=True))
    overlap = (
        Event.objects.filter(product_id__in=theirs)
        .exclude(customer=forgotten)
        .values("customer__external_id")
        .annotate(n=Count("product_id", distinct=True))
        .order_by("-n", "customer__external_id")
    )
    return forgotten.external_id, overlap[0]["customer__external_id"]


def _artifact_files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


def test_a_forgotten_demo_customer_is_purged_from_everything_on_a_live_worker(
    start_worker, shared_data, tmp_path, settings, fresh_serving
):
    # Given the first 6,000 lines of the demo data, embedded, indexed, fitted, with the tuning
    # sample prepared beside the engine build
    path = _retail_slice(
        shared_data / "online_retail" / "online_retail_2010-12_2011-12.csv.gz",
        tmp_path / "slice.csv",
        6_000,
    )
    online_retail_import_file(path=path)
    product_embeddings_refresh()
    vector_index_build()
    old = engine_build()
    tuning_sample()
    root = Path(settings.RECSITE_INDEX_DIR)
    old_base = Path(old.path).stem
    assert any(name.startswith(f"{old_base}.tuning-") for name in _artifact_files(root))
    forgotten, similar = _pick_customers()
    reader = _client("read", "ingest")
    assert reader.get(f"/api/v1/customers/{forgotten}/recommendations").status_code == 200
    before = reader.get(f"/api/v1/customers/{similar}/recommendations").json()
    assert before["engine_build"] == old.pk
    forgotten_events = Event.objects.filter(customer__external_id=forgotten).count()

    # When the shop forgets them, and the purge job runs on a live worker
    assert reader.delete(f"/api/v1/customers/{forgotten}/").json() == {
        "deleted_events": forgotten_events
    }
    request = ForgetRequest.objects.get()
    worker = start_worker(queues=("cpu",))
    job = purge_job_create()
    assert job is not None
    with through_the_broker():
        privacy_purge_run.apply_async(kwargs={"job_id": job.pk}, queue=worker.queues["cpu"])
    job = wait_for(job, worker, lambda j: j.state == JobState.SUCCEEDED, timeout_s=400)

    # Then the job records the completion time on the request
    request.refresh_from_db()
    assert job.finished_at is not None
    assert request.job_id == job.pk
    assert request.applied_at == datetime.fromisoformat(job.counts["verify"]["applied_at"])
    new = EngineBuild.objects.get(status=BuildStatus.READY)
    assert job.counts["engine"] == {
        "engine_refit": True, "engine_build": new.pk, "engine_builds_retired": [old.pk],
    }  # fmt: skip
    assert (new.customer_count, new.event_count) == (
        old.customer_count - 1, old.event_count - forgotten_events,
    )  # fmt: skip
    # ... no artifact file of the build made with them is left (tuning sample included)
    assert not {n for n in _artifact_files(root) if n.startswith(old_base)}
    # ... the check (every artifact file scanned, job history, audit log) finds nothing
    report = customer_check(external_id=forgotten)
    assert report.findings == []
    assert report.files_scanned >= 3
    # ... no row of the database and no line of the worker's log holds the id
    assert holding(text_values(database_dump()), {forgotten}) == set()
    assert holding([worker.log_text()], {forgotten}) == set()
    # ... and the similar customer's next list comes from the engine that never saw them
    serving_engine_reset()
    after = reader.get(f"/api/v1/customers/{similar}/recommendations").json()
    assert after["engine_build"] == new.pk
    assert [r["product"]["product_id"] for r in after["results"]] != [
        r["product"]["product_id"] for r in before["results"]
    ]
