"""Sequential model builds (issue 16): trained, gated on validation, published as an immutable
artifact, mapped read-only by serving processes; a failed training changes nothing served, and
a tiny shop gets a message instead of a model."""

from __future__ import annotations

import mmap
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from jobs.choices import BuildStatus, JobState
from jobs.models import Job
from jobs.services.artifact_store import artifact_store
from recommender.choices import JobKind
from recommender.ml.sequential import SequentialModel
from recommender.models import SequentialBuild
from recommender.services import recommendations as service
from recommender.services.sequential import SEQUENTIAL_KIND, sequential_build
from tests.recommender.sequential_shop import N_PRODUCTS, ordered_shop_build

pytestmark = pytest.mark.django_db

N = N_PRODUCTS  # A customer who buys P(i) buys P(i + 1) next.


@pytest.fixture
def ordered_shop(fresh_serving, settings):
    settings.RECSITE_SEQUENTIAL = "auto"  # Off in the other tests (recsite/settings/test.py).
    settings.RECSITE_SEQUENTIAL_MAX_EPOCHS = 3
    ordered_shop_build()


def served(*, reset: bool = True) -> SequentialModel | None:
    """The sequential model the serving engine holds (after a fresh load)."""
    if reset:
        service.serving_engine_reset()
    return service.serving_engine().engine._sequential


def test_a_build_is_published_with_its_validation_and_mapped_read_only(ordered_shop):
    outcome = sequential_build()
    build = outcome.build
    assert build is not None
    build.refresh_from_db()
    assert build.status == BuildStatus.READY
    assert (build.item_count, build.customer_count) == (N, 30)
    assert set(build.validation) >= {
        "sequential_ndcg@10",
        "hybrid_without_ndcg@10",
        "hybrid_with_ndcg@10",
        "weight",
        "customers",
        "epochs",
        "best_epoch",
    }
    assert build.validation["customers"] == 30
    assert build.validation["fitted_customers"] == 30
    assert len(build.validation["epochs"]) == 3
    assert build.enabled == (
        build.validation["hybrid_with_ndcg@10"] > build.validation["hybrid_without_ndcg@10"]
    )
    assert outcome.message == build.note
    # Served when enabled: the web process path maps the file read-only.
    SequentialBuild.objects.filter(pk=build.pk).update(enabled=True)
    model = served()
    assert isinstance(model, SequentialModel)
    assert model.meta["validation"]["customers"] == 30
    assert not model.items.flags.writeable
    assert all(not w.flags.writeable for w in model.weights.values())
    base: Any = model.items
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview)
    assert isinstance(base.obj, mmap.mmap)  # Mapped from the file, not read into memory.
    with pytest.raises(ValueError, match="read-only"):
        model.items[0, 0] = 0.0
    # Loaded once: the next check (every request in the test settings) keeps the same model.
    assert served(reset=False) is model


def test_the_step_releases_the_serving_engine_earlier_steps_loaded(ordered_shop):
    # given: the serving engine loaded in this process, as the tuning-sample step leaves it
    loaded = service.serving_engine()
    assert service.serving_engine() is loaded  # Held: the next call does not load it again.

    # when
    sequential_build()

    # then: forgotten while the model trained; whoever asks next loads it again
    assert service.serving_engine() is not loaded


def test_a_build_that_does_not_help_is_kept_but_not_served(ordered_shop):
    build = sequential_build().build
    assert build is not None
    SequentialBuild.objects.filter(pk=build.pk).update(enabled=True)
    assert served() is not None
    SequentialBuild.objects.filter(pk=build.pk).update(enabled=False)
    assert served(reset=False) is None  # The next check drops it, without a restart.


def test_only_the_newest_build_decides(ordered_shop):
    # An older build that helped is not served once a newer one (fitted on newer data) did not.
    older = sequential_build().build
    newer = sequential_build().build
    assert older is not None
    assert newer is not None
    SequentialBuild.objects.filter(pk=older.pk).update(enabled=True)
    SequentialBuild.objects.filter(pk=newer.pk).update(enabled=False)
    assert served() is None
    SequentialBuild.objects.filter(pk=newer.pk).update(enabled=True)
    assert served(reset=False) is not None
    assert service.serving_engine().sequential_location == newer.path != older.path


def test_a_failed_training_leaves_the_serving_model_untouched(ordered_shop):
    first = sequential_build().build
    assert first is not None
    SequentialBuild.objects.filter(pk=first.pk).update(enabled=True)
    served_file = Path(first.path)
    before = served_file.read_bytes()

    def interrupted(fraction: float) -> None:
        if fraction > 0.3:  # Midway through the epochs.
            raise KeyboardInterrupt("worker stopped")

    with pytest.raises(KeyboardInterrupt):
        sequential_build(progress=interrupted)
    failed = SequentialBuild.objects.exclude(pk=first.pk).get()
    assert failed.status == BuildStatus.FAILED
    assert failed.error == "KeyboardInterrupt: worker stopped"
    assert failed.path == ""
    # The served build, its file and the store are as they were: nothing of the failed one.
    assert SequentialBuild.objects.get(pk=first.pk).status == BuildStatus.READY
    assert served_file.read_bytes() == before
    staged = sorted(p.name for p in artifact_store().staging_dir(SEQUENTIAL_KIND).iterdir())
    assert staged == [served_file.name]
    assert served() is not None
    assert service.serving_engine().sequential_location == first.path


def test_a_tiny_shop_gets_no_model_and_a_clear_message(shop, settings):
    settings.RECSITE_SEQUENTIAL = "auto"
    outcome = sequential_build()
    assert outcome.build is None
    assert outcome.message == (
        "no sequential model: too little behaviour to learn an order from: 7 customers with "
        "two or more products (at least 20 needed) and 2 with 3 or more to validate on (at "
        "least 10); the engine serves without the sequential source"
    )
    assert not SequentialBuild.objects.exists()
    out = StringIO()
    call_command("train", "--no-progress", stdout=out)
    assert f"Sequential model: {outcome.message}." in out.getvalue()


def test_off_means_no_training(ordered_shop, settings):
    settings.RECSITE_SEQUENTIAL = "off"
    outcome = sequential_build()
    assert outcome.build is None
    assert outcome.message == "RECSITE_SEQUENTIAL is off: no sequential model"


def test_the_train_job_runs_the_sequential_step_last_with_its_progress(ordered_shop):
    out = StringIO()
    call_command("train", "--no-progress", stdout=out)

    job = Job.objects.get(kind=JobKind.TRAIN)
    build = SequentialBuild.objects.get()
    assert (job.state, job.progress, job.step) == (JobState.SUCCEEDED, 100.0, "sequential")
    assert set(job.counts) == {"autotune", "fit", "tuning-sample", "sequential"}
    assert build.job_id == job.pk
    assert build.status == BuildStatus.READY
    counts = job.counts["sequential"]
    assert counts["sequential_build"] == build.pk
    assert counts["enabled"] == build.enabled
    assert counts["message"] == build.note
    assert counts["validation"]["stopped"] == "max_epochs 3"
    assert f"Sequential model: {build.note}." in out.getvalue()


def test_a_redelivered_sequential_step_adopts_the_build_its_lost_attempt_published(ordered_shop):
    from jobs.services.runs import job_create, job_steps_run

    job = job_create(kind=JobKind.TRAIN, params={})
    job_steps_run(job_id=job.pk, steps=("autotune", "fit", "tuning-sample"))
    published = sequential_build(job=job).build  # Published, then the worker died.
    assert published is not None

    job = job_steps_run(job_id=job.pk, steps=("sequential",))

    assert SequentialBuild.objects.get().pk == published.pk  # Not trained a second time.
    assert job.counts["sequential"]["sequential_build"] == published.pk
    assert job.state == JobState.SUCCEEDED


def test_the_train_chain_fits_on_the_cpu_queue_then_trains_on_the_gpu_queue():
    from recommender.tasks import train_signature
    from recsite.celery import app

    chain = train_signature(job_id=7)
    tasks = [(sig.task, sig.kwargs) for sig in chain.tasks]
    assert tasks == [
        ("recommender.tasks.engine_train", {"job_id": 7}),
        ("recommender.tasks.sequential_train", {"job_id": 7}),
    ]
    queues = [app.amqp.router.route({}, name)["queue"].name for name, _ in tasks]
    assert queues == ["cpu", "gpu"]
