"""The jobs page in a real browser: admins start a reindex and watch it finish; merchandisers
neither see the page in the menu nor open it."""

import pytest

from jobs.choices import JobState
from jobs.models import Job
from tests.integration.conftest import LiveWorker, start_worker, through_the_broker
from tests.recommender.shop import fresh_serving, shop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "shop", "start_worker"]  # Fixtures shared with other test folders.


def on_worker_queues(monkeypatch, worker: LiveWorker) -> None:
    """Send the dashboard's reindex chain to this worker's own queues, not the shared gpu/cpu
    ones. Each link carries its queue (as in test_killed_build): the worker routes the second
    link itself, with its own settings, so overriding routes in this process would not do."""
    from recommender.dashboard import views

    real = views.reindex_signature

    def signature(*, job_id: int):
        chain = real(job_id=job_id)
        for link, queue in zip(chain.tasks, ("gpu", "cpu"), strict=True):
            link.set(queue=worker.queues[queue])
        return chain

    monkeypatch.setattr(views, "reindex_signature", signature)


def test_a_merchandiser_cannot_reach_the_jobs_page(page, login, merchandiser, shot):
    login("merch", "merch-pass-123")

    assert "Jobs" not in page.locator("nav.main-nav a").all_inner_texts()
    response = page.goto("/dashboard/jobs/")

    assert response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.locator(".error-page").inner_text().count("This page is for admins.") == 1
    shot(page, "forbidden")
    # Chromium reports the 403 document itself as a failed resource on the console: that one
    # is this test's point, any other problem still fails it.
    page.watch.problems[:] = [
        p for p in page.watch.problems if "status of 403 (Forbidden)" not in p
    ]


def test_admin_triggers_a_reindex_and_the_progress_bar_reaches_100(
    page, login, admin_user, shop, start_worker, monkeypatch, shot
):
    # given a live Celery worker process on queues of its own (not eager: the job runs there,
    # and the page only learns of its progress by polling the API)
    worker = start_worker(queues=("gpu", "cpu"))
    on_worker_queues(monkeypatch, worker)
    login("boss", "boss-pass-123")

    page.click("nav.main-nav >> text=Jobs")
    page.wait_for_selector("#job-history table.jobs, #job-history .empty")
    shot(page, "jobs-before")
    page.select_option("select[name=kind]", "reindex")
    with through_the_broker():
        page.click("#job-trigger button[type=submit]")
        bar = page.locator(".progress[data-poll-url]")
        # The worker takes a few seconds to start: the bar shows the job waiting, then done.
        bar.wait_for()
        shot(page, "jobs-started")
        page.wait_for_selector(".progress[data-state=succeeded]", timeout=120_000)
    job = Job.objects.get()
    assert "Task recommender.tasks.reindex_build[" in worker.log_text()
    assert job.state == JobState.SUCCEEDED
    assert bar.get_attribute("aria-valuenow") == "100"
    assert bar.locator(".progress-label").inner_text() == "100% · succeeded"
    assert page.locator(".progress-bar").evaluate("el => el.style.width") == "100%"
    assert page.locator(".message.success").inner_text() == (
        f"Reindex (embed + build index) started as job #{job.pk}."
    )
    # The history reloads when the job ends and lists it as succeeded.
    row = page.locator(f'#job-history tr[data-job="{job.pk}"]')
    row.wait_for()
    assert row.locator(".badge").inner_text() == "Succeeded"
    shot(page, "jobs-done")
