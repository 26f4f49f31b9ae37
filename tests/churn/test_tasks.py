"""The churn job: registered steps, queue routing, the beat entry, and an eager run."""

import pytest
from django.conf import settings

from churn import tasks
from churn.models import ChurnJobKind, ChurnModelBuild, ChurnScore
from jobs.choices import JobState
from jobs.models import Job
from jobs.registry import job_kind_steps


def test_the_churn_job_kind_is_registered_with_train_then_score():
    assert [step.name for step in job_kind_steps(ChurnJobKind.CHURN_SCORE)] == ["train", "score"]


def test_the_scheduled_job_is_in_the_beat_schedule_daily_and_expires():
    entry = settings.CELERY_BEAT_SCHEDULE["churn-score-daily"]
    assert entry == {
        "task": "churn.tasks.churn_score_scheduled",
        "schedule": 86400.0,
        "options": {"expires": 3600},
    }
    assert entry["task"] == tasks.churn_score_scheduled.name
    assert settings.CELERY_TASK_ROUTES[entry["task"]]["queue"] == "cpu"


@pytest.mark.django_db
def test_the_scheduled_task_trains_scores_and_records_a_job(churn_shop, beat_run):
    beat_run(tasks.churn_score_scheduled)  # Eager in the test settings.

    job = Job.objects.get()
    assert (job.kind, job.state, job.progress) == (
        ChurnJobKind.CHURN_SCORE,
        JobState.SUCCEEDED,
        100.0,
    )
    assert job.counts["train"]["trained"] is True
    assert job.counts["score"]["customers"] == 162
    assert job.counts["score"]["as_of"] == "2024-08-27T00:00:00+00:00"  # Day after last event.
    assert ChurnModelBuild.objects.count() == 1
    assert ChurnScore.objects.count() == 162

    # A second run reuses the week-old-at-most model and rewrites the same rows.
    beat_run(tasks.churn_score_scheduled)
    second = Job.objects.order_by("-pk").first()
    assert second is not None
    version = job.counts["score"]["model_version"]
    assert second.counts["train"] == {"trained": False, "model_version": version}
    assert ChurnScore.objects.count() == 162
