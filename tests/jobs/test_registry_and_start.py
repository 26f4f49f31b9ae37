"""The jobs app's own behaviour: the registry of kinds, starting a job after commit, and running
a kind's steps the one way every task does."""

import pytest
from django.db import transaction

from churn.models import ChurnJobKind
from churn.tasks import churn_job_run
from jobs.choices import JobState
from jobs.models import Job
from jobs.registry import (
    Step,
    UnknownJobKind,
    job_kind_choices,
    job_kind_label,
    job_kind_register,
    registry,
)
from jobs.services.runs import delay_on_commit, job_create, job_start, job_steps_run
from recommender.tasks import reindex_embed, reindex_signature

TEST_KIND = "test_two_steps"


@pytest.fixture
def two_steps():
    """A kind registered for the test only: two steps that record what they were given."""
    ran: list[tuple[str, int]] = []

    def step(name):
        def run(job, progress):
            progress(0.5)
            ran.append((name, job.pk))
            return {"ran": name}

        return Step(name, 0.5, run)

    job_kind_register(TEST_KIND, "Two test steps", (step("one"), step("two")))
    yield ran
    registry().pop(TEST_KIND)


def test_every_app_registers_its_kinds_in_installed_apps_order():
    assert job_kind_choices() == [
        ("import_products", "Import products"),
        ("import_events", "Import events"),
        ("import_online_retail", "Import Online Retail export"),
        ("reindex", "Reindex (embed + build index)"),
        ("train", "Fit the recommendation engine"),
        ("evaluate", "Offline evaluation of the active configuration"),
        ("tag", "Auto-tag products"),
        ("churn_score", "Score churn risk"),
        ("privacy_purge", "Purge forgotten customers"),
        ("privacy_report", "Shareable report"),
        ("experiment_results", "Attribute events to experiments"),
        ("experiment_replay", "Replay past traffic through an experiment"),
    ]


@pytest.mark.django_db
def test_a_kind_no_app_registered_is_refused_and_nothing_is_written():
    with pytest.raises(UnknownJobKind, match=r"^job kind 'nope' is not registered \(known: "):
        job_create(kind="nope", params={})
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_a_job_of_a_kind_no_longer_registered_still_shows_its_kind():
    job = Job.objects.create(kind="retired_kind")
    assert (job.get_kind_display(), job_kind_label("tag")) == ("retired_kind", "Auto-tag products")
    assert str(job) == f"retired_kind #{job.pk} (queued)"


def test_registering_is_checked(two_steps):
    noop = Step("x", 1.0, lambda job, progress: {})
    with pytest.raises(ValueError, match=r"^test_two_steps: already registered with other steps$"):
        job_kind_register(TEST_KIND, "Two test steps", (noop,))
    with pytest.raises(ValueError, match=r"^empty: a job kind needs at least one step$"):
        job_kind_register("empty", "Empty", ())
    with pytest.raises(ValueError, match=r"^twice: step names repeat: \['x', 'x'\]$"):
        job_kind_register("twice", "Twice", (noop, noop))
    assert "empty" not in dict(job_kind_choices())


@pytest.mark.django_db
def test_job_start_sends_the_task_once_the_transaction_commits(
    admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as sent:
        job = job_start(
            kind=ChurnJobKind.CHURN_SCORE,
            task=churn_job_run,
            params={"retrain": True},
            triggered_by=admin_user,
        )
        chained = job_start(kind="reindex", task=reindex_signature)

    assert (job.kind, job.state, job.params, job.triggered_by) == (
        "churn_score",
        JobState.QUEUED,
        {"retrain": True},
        admin_user,
    )
    assert [callback.__self__ for callback in sent] == [
        churn_job_run.si(job_id=job.pk),
        reindex_signature(job_id=chained.pk),
    ]


@pytest.mark.django_db
def test_nothing_is_sent_for_a_transaction_that_rolls_back(django_capture_on_commit_callbacks):
    def failed_request():
        with transaction.atomic():
            delay_on_commit(reindex_embed, job_id=1)
            raise RuntimeError("the request failed")

    with django_capture_on_commit_callbacks() as sent:
        with pytest.raises(RuntimeError):
            failed_request()
        delay_on_commit(reindex_embed, job_id=2)

    assert [callback.__self__ for callback in sent] == [reindex_embed.si(job_id=2)]


@pytest.mark.django_db
def test_a_task_runs_its_registered_steps_in_order_or_the_ones_it_names(two_steps):
    job = job_create(kind=TEST_KIND, params={})

    job = job_steps_run(job_id=job.pk, steps=("one",))
    assert (job.state, job.progress, two_steps) == (JobState.RUNNING, 50.0, [("one", job.pk)])

    job = job_steps_run(job_id=job.pk)  # "one" is done: only "two" runs.
    assert (job.state, job.progress) == (JobState.SUCCEEDED, 100.0)
    assert job.counts == {"one": {"ran": "one"}, "two": {"ran": "two"}}
    assert two_steps == [("one", job.pk), ("two", job.pk)]

    with pytest.raises(ValueError, match=r"^steps \['three'\] are not steps of test_two_steps"):
        job_steps_run(job_id=job.pk, steps=("three",))
