"""Experiments in a real browser, on replayed traffic: an admin creates an experiment on the
page and replays the shop's past visits through it; a live Celery worker runs the replay while
the page follows its progress; the merchandiser reads the per-variant chart; the admin promotes
the winning variant and the active configuration changes.

The shop is tests/experiments/replay_shop.py: its replay is known by hand when the treatment
serves popularity only with two products a list, and the experiment's salt is set so that the
customers it records clicks for (R1, R3, B1) see the treatment and the others the control.
"""

import uuid

import pytest
from playwright.sync_api import expect

from experiments.analysis.assignment import assign
from experiments.models import Experiment
from recommender.models import RecommendationConfig
from tests.experiments.replay_shop import CONFIG, EXPECTED, replay_shop_build
from tests.integration.conftest import start_worker, through_the_broker
from tests.recommender.shop import fresh_serving

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "start_worker"]  # Fixtures shared with other test folders.

TREATED = {"R1", "R3", "B1"}


def salt_treating(treated: set[str]) -> str:
    """A salt whose 50/50 assignment gives the treatment (the second variant) to ``treated``."""
    for i in range(100_000):
        salt = f"browser-{i}"
        if {c for c in EXPECTED if assign(salt, f"c:{c}", (50, 50)) == 1} == treated:
            return salt
    raise AssertionError("no such salt")


@pytest.fixture
def replay_shop(fresh_serving):
    replay_shop_build()
    # Version 2 serves popularity only; version 1 (active) is the shop's blend.
    weights = {name: 1.0 if name == "popularity" else 0.0 for name in CONFIG.source_weights}
    popular = CONFIG.replace(source_weights=weights)
    RecommendationConfig.objects.create(version=2, config=popular.to_dict(), note="popularity")


def on_queue_of_its_own(monkeypatch) -> str:
    """Send the page's replay job to a queue of this test's own, not the shared cpu one; the
    worker that consumes it is started later."""
    from experiments.dashboard import views
    from experiments.tasks import experiment_replay_run

    queue = f"test-cpu-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(
        views,
        "experiment_replay_run",
        lambda *, job_id: experiment_replay_run.si(job_id=job_id).set(queue=queue),
    )
    return queue


def create_on_the_page(page) -> Experiment:
    """The admin's form: version 1 against version 2, decided at 3 visitors a variant."""
    page.goto("/dashboard/experiments/")
    page.fill("#experiment-create input[name=name]", "blend vs popularity")
    page.fill("input[name=control_config_version]", "1")
    page.fill("input[name=treatment_config_version]", "2")
    page.fill("input[name=horizon_visitors]", "3")
    page.click("#experiment-create button[type=submit]")
    page.wait_for_load_state("networkidle")
    experiment = Experiment.objects.get(name="blend vs popularity")
    assert page.url.endswith(f"/dashboard/experiments/{experiment.pk}/")
    return experiment


def replay_on_the_page(page, start_worker, queue: str) -> Experiment:
    """The shop's visits from 10 June for 30 days, two products a list, replayed by a live
    worker while the page follows the job; the page reloads when it ends. The worker starts once
    the page shows the queued job's progress bar: the replay takes a tenth of a second, and a
    worker already running could end it before the page is drawn."""
    page.fill("#experiment-replay-form input[name=since]", "2024-06-10")
    page.fill("#experiment-replay-form input[name=days]", "30")
    page.fill("#experiment-replay-form input[name=k]", "2")
    with through_the_broker():
        page.click("#experiment-replay-form button[type=submit]")
        page.wait_for_url("**/dashboard/experiments/*/")
        replay = Experiment.objects.get(replay__isnull=False)
        assert page.url.endswith(f"/dashboard/experiments/{replay.pk}/")
        expect(page.locator("#replay-progress")).to_be_visible()
        worker = start_worker(queues=(queue,), real_queue_names=True)
        page.wait_for_selector("#experiment-replay[data-status=done]", timeout=180_000)
    assert "Task experiments.tasks.experiment_replay_run[" in worker.log_text()
    return replay


def test_an_experiment_replayed_on_a_live_worker_is_read_and_its_winner_promoted(
    page, login, admin_user, merchandiser, replay_shop, start_worker, monkeypatch, shot
):
    queue = on_queue_of_its_own(monkeypatch)

    # An admin creates the experiment on the page and replays past traffic through it.
    login("boss", "boss-pass-123")
    experiment = create_on_the_page(page)
    Experiment.objects.filter(pk=experiment.pk).update(salt=salt_treating(TREATED))
    shot(page, "draft")
    replay = replay_on_the_page(page, start_worker, queue)

    summary = page.locator("#replay-summary").inner_text()
    assert summary.startswith(
        "11 visits of 10 customers; recorded 5 clicks, 3 carts and 2 purchases"
    )
    # R1 (2 lists), R3 and B1 see the treatment: 5 clicks on 4 lists; the control's seven
    # visitors touched nothing it showed.
    cells = page.locator('#experiment-table tr[data-variant="treatment"] td')
    assert [cells.nth(i).inner_text() for i in (2, 3, 4)] == ["3", "4", "5"]
    shot(page, "replayed")

    # The merchandiser reads the per-variant chart.
    page.click("header.top >> text=Log out")
    login("merch", "merch-pass-123")
    page.goto(f"/dashboard/experiments/{replay.pk}/")
    chart = page.locator('[data-chart="chart-experiment-ctr"]')
    expect(chart).to_have_attribute("data-drawn", "true")
    assert chart.evaluate("el => el.data.map(trace => trace.name)") == ["control", "treatment"]
    assert page.locator("#experiment-promote").count() == 0  # Merchandisers read.
    shot(page, "merchandiser")

    # The admin promotes the winner: the treatment's configuration becomes the active one.
    page.click("header.top >> text=Log out")
    login("boss", "boss-pass-123")
    page.goto(f"/dashboard/experiments/{replay.pk}/")
    page.select_option("#promote-variant", "treatment")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#experiment-promote button[type=submit]")
    page.wait_for_load_state("networkidle")

    assert page.locator(".message.success").inner_text() == (
        "Configuration version 3 is now active."
    )
    active = RecommendationConfig.objects.get(is_active=True)
    assert (active.version, active.config) == (
        3,
        RecommendationConfig.objects.get(version=2).config,
    )
    shot(page, "promoted")
