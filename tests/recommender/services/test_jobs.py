import pytest
from django.core.management import call_command

from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from jobs.services.runs import job_create, job_run, job_step_run
from recommender.choices import JobKind
from recommender.ingestion.records import ProductRecord
from recommender.models import IndexBuild
from recommender.services.embeddings import get_embedder
from recommender.services.index import serving_index_reset
from recommender.services.ingestion import products_upsert
from recommender.tasks import reindex_signature

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_index(settings, tmp_path):
    settings.RECSITE_INDEX_DIR = tmp_path / "index"
    get_embedder.cache_clear()
    serving_index_reset()
    products_upsert(
        records=[
            ProductRecord("A", "Red apple"),
            ProductRecord("B", "Green pear"),
            ProductRecord("C", "Yellow banana"),
        ]
    )


def test_reindex_job_runs_both_steps_to_100_percent_with_counts(admin_user):
    job = job_create(kind=JobKind.REINDEX, params={}, triggered_by=admin_user)

    job = job_run(job_id=job.pk)

    build = IndexBuild.objects.get()
    assert job.state == JobState.SUCCEEDED
    assert job.progress == 100.0
    assert job.triggered_by == admin_user
    assert job.error == ""
    assert job.counts["embed"]["embedded"] == 3
    assert job.counts["embed"]["unchanged"] == 0
    assert job.counts["build"]["index_build"] == build.pk
    assert job.counts["build"]["items"] == 3
    assert job.counts["build"]["self_check_recall"] == 1.0
    assert build.job == job
    assert build.status == BuildStatus.READY


def test_running_a_finished_job_again_changes_nothing():
    job = job_run(job_id=job_create(kind=JobKind.REINDEX, params={}).pk)
    finished_at = job.finished_at

    again = job_step_run(job_id=job.pk, step="build")

    assert again.finished_at == finished_at
    assert IndexBuild.objects.count() == 1


def test_reindex_chain_routes_embedding_to_gpu_and_building_to_cpu(settings):
    from recsite.celery import app

    signature = reindex_signature(job_id=1)
    routes = [app.amqp.router.route({}, task.task)["queue"].name for task in signature.tasks]

    assert [task.task for task in signature.tasks] == [
        "recommender.tasks.reindex_embed",
        "recommender.tasks.reindex_build",
    ]
    assert routes == ["gpu", "cpu"]


def test_reindex_chain_in_eager_mode_completes_the_job():
    job = job_create(kind=JobKind.REINDEX, params={})

    reindex_signature(job_id=job.pk).apply_async()

    job.refresh_from_db()
    assert (job.state, job.progress) == (JobState.SUCCEEDED, 100.0)


def test_a_failing_step_marks_the_job_failed_with_the_error(settings):
    settings.RECSITE_INDEX_M = 1
    job = job_create(kind=JobKind.REINDEX, params={})

    with pytest.raises(ValueError, match="m"):
        job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error.startswith("build: ValueError: ")
    assert job.finished_at is not None


def test_reindex_command_reports_the_build(capsys):
    call_command("reindex", "--no-progress")

    out = capsys.readouterr().out
    build = IndexBuild.objects.get()
    embed_seconds = Job.objects.get().counts["embed"]["seconds"]
    assert out.splitlines() == [
        f"Embedded 3 products (0 unchanged) in {embed_seconds:.1f} s.",
        f"Index build {build.pk}: 3 vectors of dimension 64, self-check recall@10 1.0000, "
        f"built in {build.build_seconds:.1f} s.",
    ]


@pytest.mark.django_db(transaction=True)
def test_progress_inside_a_transaction_is_visible_at_once_on_postgresql():
    from django.db import connection, connections, transaction

    from jobs.services.runs import _ProgressWriter

    job = job_create(kind=JobKind.IMPORT_EVENTS, params={})
    writer = _ProgressWriter(job, 0.0, 1.0, None)
    observer = connections.create_connection("default")
    try:
        with transaction.atomic():  # As a strict import holds one transaction throughout.
            writer(0.5)
            with observer.cursor() as cursor:
                cursor.execute("SELECT progress FROM recommender_job WHERE id = %s", [job.pk])
                seen = cursor.fetchone()[0]
    finally:
        writer.close()
        observer.close()

    # SQLite has a single writer: there the value is written when the step ends instead.
    assert seen == (50.0 if connection.vendor == "postgresql" else 0.0)


def test_reindex_if_needed_does_nothing_when_the_index_is_current(capsys):
    call_command("reindex", "--no-progress")
    capsys.readouterr()

    call_command("reindex", "--no-progress", "--if-needed")
    build = IndexBuild.objects.get()
    assert capsys.readouterr().out == (
        f"Index build {build.pk} (3 vectors, hashing-v1-64) is current; nothing to do.\n"
    )

    products_upsert(records=[ProductRecord("D", "Purple plum")])
    call_command("reindex", "--no-progress", "--if-needed")
    assert IndexBuild.objects.count() == 2
