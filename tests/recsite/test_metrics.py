"""GET /metrics: who may read it, and what it counts (one process here; several gunicorn
workers summed: tests/integration/test_metrics_live.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from recommender.choices import JobKind
from recommender.models import EngineBuild, IndexBuild
from tests.recommender.shop import fresh_serving, shop

__all__ = ["fresh_serving", "shop"]

pytestmark = pytest.mark.django_db


def samples(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics page, by name and labels."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(page, name: str, **labels: str) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scraper(client, settings):
    settings.RECSITE_METRICS_TOKEN = "scrape-secret"
    return lambda: samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret"))


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer wrong", 401), ("Bearer scrape-secret", 200), ("scrape-secret", 401)],
)
def test_a_scraper_needs_the_token(client, settings, header, status):
    settings.RECSITE_METRICS_TOKEN = "scrape-secret"
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/metrics", **extra)

    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_no_token_is_accepted_when_none_is_set(client, settings):
    settings.RECSITE_METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_admins_read_it_signed_in_and_merchandisers_do_not(client, admin_user, merchandiser):
    client.force_login(merchandiser)
    assert client.get("/metrics").status_code == 401
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 200


def test_served_lists_are_counted_by_kind_and_items_by_source(scraper, shop, read_client):
    before = scraper()

    served = read_client.get("/api/v1/customers/C2/recommendations?k=5").json()
    similar = read_client.get("/api/v1/products/INK-1/similar?k=3").json()

    after = scraper()
    assert value(after, "recsite_recommendation_lists_total", kind="customer") == (
        value(before, "recsite_recommendation_lists_total", kind="customer") + 1
    )
    assert value(after, "recsite_recommendation_lists_total", kind="similar") == (
        value(before, "recsite_recommendation_lists_total", kind="similar") + 1
    )
    for kind, answer in (("customer", served), ("similar", similar)):
        sources = [source for item in answer["results"] for source in item["sources"]]
        assert sources, answer
        for source in set(sources):
            name = "recsite_recommended_items_total"
            assert value(after, name, kind=kind, source=source) == (
                value(before, name, kind=kind, source=source) + sources.count(source)
            )


def test_request_latency_is_measured_per_endpoint(scraper, shop, read_client):
    name = "django_http_requests_latency_seconds_by_view_method_count"
    view = {"view": "api:customer-recommendations", "method": "GET"}
    before = value(scraper(), name, **view)

    for _ in range(3):
        assert read_client.get("/api/v1/customers/C1/recommendations").status_code == 200

    assert value(scraper(), name, **view) == before + 3


def test_the_newest_builds_age_is_read_at_scrape_time(scraper, shop):
    index = IndexBuild.objects.get(status=BuildStatus.READY)
    engine = EngineBuild.objects.get(status=BuildStatus.READY)
    IndexBuild.objects.filter(pk=index.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    EngineBuild.objects.filter(pk=engine.pk).update(finished_at=timezone.now() - timedelta(days=1))

    page = scraper()

    index_age = value(page, "recsite_build_age_seconds", artifact="index")
    engine_age = value(page, "recsite_build_age_seconds", artifact="engine")
    assert 7200 <= index_age < 7200 + 60
    assert 86400 <= engine_age < 86400 + 60


def test_without_builds_there_is_no_age(scraper):
    page = scraper()

    assert ("recsite_build_age_seconds", (("artifact", "index"),)) not in page


def test_jobs_are_counted_by_kind_and_state_with_their_durations(scraper):
    start = timezone.now() - timedelta(hours=1)
    for seconds, state, error in [
        (10, JobState.SUCCEEDED, ""),
        (30, JobState.SUCCEEDED, ""),
        (5, JobState.FAILED, "build: ValueError: m"),
        (7, JobState.FAILED, "worker lost: process 1 on h died during step 'build'"),
    ]:
        Job.objects.create(
            kind=JobKind.REINDEX, state=state, error=error, started_at=start,
            finished_at=start + timedelta(seconds=seconds),
        )  # fmt: skip
    Job.objects.create(kind=JobKind.TRAIN, state=JobState.RUNNING, started_at=start)
    Job.objects.create(kind=JobKind.TRAIN, state=JobState.QUEUED)

    page = scraper()

    assert value(page, "recsite_jobs", kind="reindex", state="succeeded") == 2
    assert value(page, "recsite_jobs", kind="reindex", state="failed") == 2
    assert value(page, "recsite_jobs", kind="train", state="running") == 1
    assert value(page, "recsite_jobs", kind="train", state="queued") == 1
    assert value(page, "recsite_jobs_lost_total", kind="reindex") == 1
    assert value(page, "recsite_jobs_lost_total", kind="train") == 0
    assert value(page, "recsite_jobs_ended_total", kind="reindex", state="succeeded") == 2
    assert value(page, "recsite_job_seconds_total", kind="reindex", state="succeeded") == 40
    assert value(page, "recsite_jobs_ended_total", kind="reindex", state="failed") == 2
    assert value(page, "recsite_job_seconds_total", kind="reindex", state="failed") == 12
