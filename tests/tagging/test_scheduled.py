"""The nightly tagging of new products: when it runs, the job it records, and its beat entry."""

from django.conf import settings

from jobs.choices import JobState
from jobs.models import Job
from jobs.services.runs import job_create
from recommender.models import Product
from recommender.services.embeddings import product_embeddings_refresh
from tagging import tasks
from tagging.models import ProductTag, Tag, TaggingJobKind
from tagging.services import tagging_new_reasons


def test_a_catalogue_never_tagged_is_tagged_then_left_alone_until_products_change(
    catalogue, beat_run
):
    first = tagging_new_reasons()
    beat_run(tasks.tag_new_scheduled)  # Eager in the test settings.
    after = tagging_new_reasons()

    job = Job.objects.get()
    assert first == ("no tagging job has run yet",)
    assert (job.kind, job.state) == (TaggingJobKind.TAG, JobState.SUCCEEDED)
    assert job.params == {
        "only_new": True,
        "source": "schedule",
        "reasons": ["no tagging job has run yet"],
    }
    assert ProductTag.objects.count() > 0
    assert after == ()
    beat_run(tasks.tag_new_scheduled)
    assert Job.objects.count() == 1


def test_a_new_product_is_tagged_the_next_night_and_only_it(catalogue, beat_run):
    beat_run(tasks.tag_new_scheduled)
    Product.objects.create(external_id="p-yog-3", title="Vanilla yogurt cups")
    waiting = tagging_new_reasons()
    product_embeddings_refresh()
    embedded = tagging_new_reasons()

    beat_run(tasks.tag_new_scheduled)

    second = Job.objects.order_by("-pk").first()
    assert second is not None
    assert waiting == ("1 product awaits embedding",)
    assert embedded == ("1 product embedded anew since the last tagging job",)
    assert second.state == JobState.SUCCEEDED
    assert second.counts["tag"]["products"] == 1
    assert list(
        ProductTag.objects.filter(product__external_id="p-yog-3").values_list(
            "tag__name", flat=True
        )
    ) == ["dairy/yogurt"]


def test_nothing_is_tagged_without_a_vocabulary_or_while_a_tagging_job_runs(catalogue):
    busy = job_create(kind=TaggingJobKind.TAG, params={})

    assert tagging_new_reasons() == ()
    busy.delete()
    Tag.objects.all().delete()
    assert tagging_new_reasons() == ()


def test_the_nightly_tagging_is_in_the_beat_schedule_half_an_hour_after_the_refresh():
    entry = settings.CELERY_BEAT_SCHEDULE["tag-new-nightly"]
    assert entry["task"] == tasks.tag_new_scheduled.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})
    assert settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "default"}
    assert settings.CELERY_TASK_ROUTES["tagging.tasks.tag_job_run"] == {"queue": "gpu"}
