"""Metrics and logs of live processes: two gunicorn workers' counters summed on every scrape of
/metrics (prometheus_client's multiprocess mode, gunicorn.conf.py); JSON log lines from gunicorn
and from a Celery worker, with the task's id on a task's lines."""

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from jobs.choices import JobState
from jobs.services.runs import job_create
from recommender.choices import JobKind
from recommender.tasks import import_job_run

from .conftest import through_the_broker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TOKEN = "scrape-secret"


def _health_requests(web) -> float:
    page = requests.get(
        web.url("/metrics"), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    page.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(page.text)
        for sample in family.samples
        if sample.name == "django_http_responses_total_by_status_view_method_total"
        and sample.labels["view"] == "health-live"
    )


def test_a_scrape_sums_every_gunicorn_worker_and_gunicorn_logs_json(start_web):
    web = start_web(workers=2, RECSITE_METRICS_TOKEN=TOKEN, RECSITE_LOG_FORMAT="json")
    web.wait_until_up()
    before = _health_requests(web)

    # A connection per request: the two workers take turns accepting them.
    for _ in range(6):
        assert requests.get(web.url("/health/live"), timeout=30).status_code == 200

    assert _health_requests(web) == before + 6
    records = [json.loads(line) for line in web.log_text().splitlines() if line.startswith("{")]
    assert any(
        r["logger"] == "gunicorn.error" and r["message"].startswith("Listening at: ")
        for r in records
    ), web.log_text()
    assert sum(r["message"].startswith("Booting worker with pid") for r in records) == 2


def test_a_celery_worker_logs_json_with_the_task_on_its_lines(start_worker, tmp_path):
    worker = start_worker(queues=("default",), RECSITE_LOG_FORMAT="json")
    path = tmp_path / "products.csv"
    path.write_text("product_id,title\nP1,Mug\n")
    job = job_create(kind=JobKind.IMPORT_PRODUCTS, params={"path": str(path)})

    with through_the_broker():
        result = import_job_run.apply_async(
            kwargs={"job_id": job.pk}, queue=worker.queues["default"]
        )
    wait_for(job, worker, lambda j: j.state == JobState.SUCCEEDED)

    records = [json.loads(line) for line in worker.log_text().splitlines()]
    [done] = [r for r in records if r["message"].startswith(f"Job {job.pk} (import_products)")]
    assert done["task_id"] == result.id
    assert done["task_name"] == "recommender.tasks.import_job_run"
    assert done["level"] == "INFO"
    assert any(r["message"].endswith("ready.") for r in records)
