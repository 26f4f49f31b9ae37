"""A real Celery worker process consumes a job from the configured broker and writes to the
configured database (Redis and PostgreSQL in CI; the filesystem broker and SQLite embedded)."""

import pytest

from jobs.choices import JobState
from jobs.services.runs import job_create
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, Event, Product
from recommender.services.ingestion import products_upsert
from recommender.tasks import import_job_run

from .conftest import through_the_broker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVENTS_CSV = """event_id,customer_id,product_id,event_type,timestamp,quantity,value
w-1,c1,P1,view,2024-03-01T10:00:00Z,1,
w-2,c1,P1,purchase,2024-03-01T10:05:00Z,2,19.80
w-3,c2,P2,add_to_cart,2024-03-02T09:00:00Z,1,
"""


def test_live_worker_runs_an_import_job_from_the_broker(start_worker, tmp_path):
    # given a catalogue, an events file, a queued job and a worker process
    worker = start_worker(queues=("default",))
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])
    events_file = tmp_path / "events.csv"
    events_file.write_text(EVENTS_CSV)
    job = job_create(kind=JobKind.IMPORT_EVENTS, params={"path": str(events_file)})

    # when the job goes through the broker to the worker process
    with through_the_broker():
        import_job_run.apply_async(kwargs={"job_id": job.pk}, queue=worker.queues["default"])
    job = wait_for(job, worker, lambda j: j.state == JobState.SUCCEEDED, timeout_s=120)

    # then the worker wrote the events and the job record
    assert job.progress == 100.0
    assert job.error == ""
    assert job.counts["events"]["created"] == 3
    assert job.counts["rejected"] == 0
    assert job.started_at is not None
    assert job.finished_at is not None
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["c1", "c2"]
    assert sorted(Event.objects.values_list("event_id", "product__external_id")) == [
        ("w-1", "P1"), ("w-2", "P1"), ("w-3", "P2"),
    ]  # fmt: skip
    assert Product.objects.count() == 2
    # and it was the worker process that ran it, having taken the message from the broker
    assert "Task recommender.tasks.import_job_run[" in worker.log_text()
