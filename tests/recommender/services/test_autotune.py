"""Automatic tuning in every fit, on PostgreSQL: a noise-led configuration is replaced by a
better version, a version that is already the best stays, locked settings never move, a
merchandiser's save made during the search is never overwritten, and the train job runs it."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings

from jobs.models import Job
from recommender.evaluation.blend_search import SEARCHED
from recommender.ml.engine import EngineConfig
from recommender.models import Customer, Event, Product, RecommendationConfig
from recommender.services.autotune import config_autotune
from recommender.services.recommendations import (
    ConfigChanged,
    recommendation_config_active,
    recommendation_config_save,
    recommendation_config_untuned,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOISY = EngineConfig().replace(
    source_weights={
        **EngineConfig().source_weights,
        "collaborative": 0.01,
        "semantic": 0.0,
        "popularity": 0.0,
        "trending": 0.0,
    },
    half_life_days=365.0,
)


def _popular_shop(customers: int = 400, items: int = 60, seed: int = 3) -> None:
    """Customers buy six products each, drawn by a Zipf-like popularity."""
    rng = np.random.default_rng(seed)
    products = Product.objects.bulk_create(
        Product(external_id=f"P{i}", title=f"product {i}") for i in range(items)
    )
    people = Customer.objects.bulk_create(Customer(external_id=f"C{i}") for i in range(customers))
    share = 1.0 / np.arange(1, items + 1) ** 1.2
    share /= share.sum()
    events = []
    for c, customer in enumerate(people):
        for step, item in enumerate(rng.choice(items, size=6, replace=False, p=share)):
            events.append(
                Event(
                    event_id=f"e{c}-{step}",
                    customer=customer,
                    product=products[int(item)],
                    event_type="purchase",
                    occurred_at=T0 + timedelta(days=c % 50, hours=step),
                )
            )
    Event.objects.bulk_create(events)


@pytest.mark.django_db
def test_a_better_blend_is_activated_as_a_new_version_and_a_second_search_keeps_it():
    # given: a noise-led active version with the half-life locked
    _popular_shop()
    saved = recommendation_config_save(config=NOISY, note="by hand", locked=["half_life_days"])

    # when
    outcome = config_autotune(budget_seconds=120)

    # then: a new version, tuned on validation, with the search stored and the lock kept
    active = recommendation_config_active()
    assert active.tuning is not None
    assert outcome.activated_version == active.version == saved.version + 1
    assert active.note.startswith("tuned automatically, +")
    assert active.note.endswith("% NDCG@10 on validation")
    assert active.tuning["replaced_version"] == saved.version
    assert active.tuning["best_ndcg"] > active.tuning["active_ndcg"]
    assert active.tuning["locked"] == ["half_life_days"]
    assert active.locked == ["half_life_days"]
    assert active.config["half_life_days"] == 365.0
    assert outcome.as_dict()["autotune"] == "activated"
    assert recommendation_config_untuned(active).version == saved.version

    # when: tuned again from the version it chose
    again = config_autotune(budget_seconds=120)

    # then: nothing beats it by the gain needed; no new version
    assert again.activated_version is None
    assert again.reason.startswith(f"kept version {active.version}: the best point found")
    assert RecommendationConfig.objects.count() == active.version


@pytest.mark.django_db
def test_a_save_made_during_the_search_is_never_replaced():
    # given: version 2 active, then a merchandiser saves version 3
    recommendation_config_active()
    two = recommendation_config_save(config=NOISY)
    recommendation_config_save(config=EngineConfig(), note="by hand")

    # when: a save meant to replace version 2 arrives
    with pytest.raises(ConfigChanged, match="version 2 is no longer the active one"):
        recommendation_config_save(config=EngineConfig(), replaces=two.version)

    # then: the merchandiser's version still serves
    assert recommendation_config_active().note == "by hand"


@pytest.mark.django_db
def test_the_reasons_it_does_nothing():
    recommendation_config_active()
    assert config_autotune(budget_seconds=0).reason == (
        "automatic tuning is off (RECSITE_AUTOTUNE_SECONDS=0)"
    )
    recommendation_config_save(config=NOISY, locked=list(SEARCHED))
    assert config_autotune(budget_seconds=60).reason == (
        "every tuned setting is locked on the tuning page"
    )
    recommendation_config_save(config=NOISY, locked=[])
    small = config_autotune(budget_seconds=60)  # No behaviour at all.
    assert small.activated_version is None
    assert small.reason.startswith("too little behaviour to tune on: 0 customers have")


@pytest.mark.django_db(transaction=True)
@override_settings(RECSITE_AUTOTUNE_SECONDS=60)
def test_the_train_job_tunes_before_it_fits_unless_asked_not_to(settings, tmp_path):
    # given
    settings.RECSITE_VAR_DIR = tmp_path
    _popular_shop()
    recommendation_config_save(config=NOISY)
    out = StringIO()

    # when
    call_command("train", "--no-progress", stdout=out, stderr=StringIO())

    # then: the job's first step tuned, and the fit used the version it activated
    job = Job.objects.latest("pk")
    active = recommendation_config_active()
    assert job.counts["autotune"]["autotune"] == "activated"
    assert job.counts["fit"]["config_version"] == active.version
    assert f"Automatic tuning: activated version {active.version}:" in out.getvalue()
    # The fit step also learned a reranker on validation and says whether it serves, and why
    verdict = job.counts["fit"]["reranker"]
    assert verdict.startswith(("kept the linear blend: the reranker scored", "reranker: "))
    assert out.getvalue().splitlines()[-2:] == [
        f"Reranker: {verdict}.",
        "Sequential model: RECSITE_SEQUENTIAL is off: no sequential model.",
    ]

    # when: asked not to tune
    call_command("train", "--no-progress", "--no-autotune", stdout=StringIO(), stderr=StringIO())

    # then
    job = Job.objects.latest("pk")
    assert job.counts["autotune"] == {
        "autotune": "skipped",
        "reason": "asked not to tune (--no-autotune)",
    }
