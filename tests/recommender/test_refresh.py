"""The nightly refresh: what it plans on the test shop, the jobs the beat task queues, the beat
entry, and ``manage.py train --if-needed``."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from jobs.choices import JobState
from jobs.models import Job
from jobs.services.runs import job_create
from recommender import tasks
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, EngineBuild, IndexBuild, Product
from recommender.services.embeddings import product_embeddings_refresh
from recommender.services.ingestion import customer_forget, products_upsert
from recommender.services.refresh import RefreshPlan, refresh_plan
from tests.recommender.shop import T0, add_event, fresh_serving, shop

__all__ = ["fresh_serving", "shop"]

pytestmark = pytest.mark.django_db


def engine_pk():
    return EngineBuild.objects.get().pk


def test_a_shop_refreshed_a_moment_ago_needs_nothing(shop):
    assert refresh_plan() == RefreshPlan(reindex=False, train=False, reasons=())


def test_new_events_call_for_a_refit_only(shop):
    add_event(Customer.objects.get(external_id="C1"), "MUG-1", at=T0)
    add_event(Customer.objects.get(external_id="C2"), "MUG-2", at=T0)

    assert refresh_plan() == RefreshPlan(
        reindex=False,
        train=True,
        reasons=(f"2 events received since engine build {engine_pk()}",),
    )


def test_a_forgotten_customer_calls_for_a_refit(shop):
    customer_forget(customer=Customer.objects.get(external_id="C2"))  # And their 3 purchases.

    assert refresh_plan() == RefreshPlan(
        reindex=False, train=True, reasons=(f"3 events deleted since engine build {engine_pk()}",)
    )


def test_a_new_embedded_product_calls_for_a_reindex_and_a_refit(shop):
    products_upsert(records=[ProductRecord("TEA-1", "Green tea", category="Kitchen")])
    waiting = refresh_plan()
    product_embeddings_refresh()
    embedded = refresh_plan()

    index = IndexBuild.objects.get().pk
    changed = f"1 product added or changed since engine build {engine_pk()}"
    assert waiting == RefreshPlan(True, True, ("1 product awaits embedding", changed))
    assert embedded == RefreshPlan(
        True, True, (f"1 product embedded since index build {index}", changed)
    )


def test_nothing_is_planned_while_a_reindex_or_train_job_is_queued(shop):
    add_event(Customer.objects.get(external_id="C1"), "MUG-1", at=T0)
    job = job_create(kind=JobKind.TRAIN, params={})

    assert refresh_plan() == RefreshPlan(False, False, (f"job {job.pk} (train) is queued",))


def test_the_nightly_task_refits_what_changed_and_records_the_jobs(shop, beat_run):
    add_event(Customer.objects.get(external_id="C1"), "MUG-1", at=T0)
    before = engine_pk()

    beat_run(tasks.refresh_scheduled)  # Eager in the test settings: the jobs run at once.

    job = Job.objects.get()
    assert (job.kind, job.state) == (JobKind.TRAIN, JobState.SUCCEEDED)
    assert job.params == {
        "source": "schedule",
        "reasons": [f"1 event received since engine build {before}"],
    }
    assert EngineBuild.objects.filter(status="ready").count() == 2
    assert refresh_plan() == RefreshPlan(False, False, ())
    beat_run(tasks.refresh_scheduled)
    assert Job.objects.count() == 1  # Nothing changed since: no job.


def test_the_nightly_task_reindexes_before_it_refits(shop, beat_run):
    products_upsert(records=[ProductRecord("TEA-1", "Green tea", category="Kitchen")])

    beat_run(tasks.refresh_scheduled)

    kinds = list(Job.objects.order_by("pk").values_list("kind", "state"))
    assert kinds == [(JobKind.REINDEX, JobState.SUCCEEDED), (JobKind.TRAIN, JobState.SUCCEEDED)]
    tea = Product.objects.get(external_id="TEA-1")
    assert IndexBuild.objects.filter(status="ready").latest().item_count == 9
    assert tea.embedding.model_name == "hashing-v1-64"
    assert refresh_plan() == RefreshPlan(False, False, ())


def test_the_nightly_refresh_is_in_the_beat_schedule_on_the_default_queue():
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-nightly"]
    assert entry["task"] == tasks.refresh_scheduled.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {0})
    assert entry["options"] == {"expires": 3600}
    assert settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "default"}
    assert settings.CELERY_TIMEZONE == settings.TIME_ZONE


def test_train_if_needed_says_why_it_does_nothing_or_refits(shop):
    quiet = StringIO()
    call_command("train", "--if-needed", stdout=quiet)
    add_event(Customer.objects.get(external_id="C1"), "MUG-1", at=T0)
    refit, bar = StringIO(), StringIO()
    call_command("train", "--if-needed", stdout=refit, stderr=bar)  # A new event: it refits.

    newest = EngineBuild.objects.order_by("-pk").first()
    assert newest is not None
    assert quiet.getvalue() == "Nothing to do: the newest engine build is current.\n"
    assert EngineBuild.objects.count() == 2
    tuned, fitted, second, reranker, sequential = refit.getvalue().splitlines()
    # Three customers are too few to tune on: the job says so and fits the active version.
    assert tuned == (
        "Automatic tuning: too little behaviour to tune on: 3 customers have a validation "
        "product (at least 3 distinct products each); at least 50 are needed to tune on."
    )
    assert fitted.startswith(f"Engine build {newest.pk}: 8 products, 8 customers, 18 ")
    assert reranker == (
        "Reranker: kept the linear blend: 3 validation customers, at least 100 are needed to "
        "learn a reranker."
    )
    # The sequential step says why it trained nothing (off in tests: recsite/settings/test.py).
    assert sequential == "Sequential model: RECSITE_SEQUENTIAL is off: no sequential model."
    # The fit says which collaborative model it chose and what memory it planned and used.
    assert newest.collaborative == "EASE on 8 products, 200 weights a product"
    estimate = round(newest.memory["estimate"]["total"] / 2**20)
    assert second.startswith(
        f"Collaborative model: {newest.collaborative}. Memory: estimated {estimate} MiB, peak "
    )
    assert newest.memory["peak_rss"] > 0
    assert newest.memory["budget"] > newest.memory["estimate"]["total"]
    job = Job.objects.get(kind=JobKind.TRAIN)
    assert f"train (job {job.pk}): 100%" in bar.getvalue()
