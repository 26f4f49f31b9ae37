"""The shareable reports page in a real browser: an admin releases a report on a live worker,
watches it finish, opens it (small churn bands suppressed) and the menu hides it from
merchandisers."""

from datetime import UTC, datetime

import pytest

from churn.models import ChurnScore
from privacy.models import AggregateRelease
from recommender.models import Customer
from tests.integration.conftest import start_worker, through_the_broker
from tests.recommender.shop import fresh_serving, shop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "shop", "start_worker"]  # Fixtures shared with other test folders.


def test_admin_releases_a_report_on_a_live_worker_and_reads_it(
    page, login, admin_user, shop, start_worker, monkeypatch, shot
):
    # given a scoring run with a small high-risk band, and a live worker on a queue of its own
    at = datetime(2024, 6, 1, tzinfo=UTC)
    for n, band in enumerate(["low"] * 20 + ["medium"] * 9 + ["high"] * 3):
        ChurnScore.objects.create(
            customer=Customer.objects.create(external_id=f"S{n}"), score=0.5, band=band,
            model_version="m1", as_of=at, computed_at=at,
        )  # fmt: skip
    worker = start_worker(queues=("cpu",))
    from privacy import tasks

    real = tasks.privacy_report_run
    monkeypatch.setattr(
        tasks,
        "privacy_report_run",
        lambda *, job_id: real.si(job_id=job_id).set(queue=worker.queues["cpu"]),
    )
    login("boss", "boss-pass-123")

    # when the admin releases a report of the churn bands and the categories
    page.click("nav.main-nav >> text=Reports")
    page.wait_for_selector("#report-history .empty")
    page.uncheck("input[name=sections][value=customers]")
    page.check("input[name=sections][value=churn_bands]")
    page.fill("input[name=note]", "board pack")
    with through_the_broker():
        page.click("#report-form button[type=submit]")
        page.wait_for_selector(".progress[data-state=succeeded]", timeout=120_000)

    # then the history reloads with it, and its page shows the tables as released
    release = AggregateRelease.objects.get()
    assert "Task privacy.tasks.privacy_report_run[" in worker.log_text()
    row = page.locator(f'#report-history tr[data-report="{release.pk}"]')
    row.wait_for()
    assert row.locator("td").nth(3).inner_text() == "board pack"
    assert row.locator("td").nth(4).inner_text() == "categories, churn_bands"
    shot(page, "reports")
    row.locator("td a").first.click()
    page.wait_for_url(f"**/dashboard/privacy/reports/{release.pk}/")
    bands = page.locator("#section-churn_bands tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent))"
    )
    assert bands == [
        ["low", "20"], ["medium", "suppressed"], ["high", "suppressed"], ["total", "32"],
    ]  # fmt: skip
    categories = page.locator("#section-categories tbody td.group").all_text_contents()
    assert categories == ["Home", "Kitchen", "Office"]
    shot(page, "report")


def test_a_merchandiser_neither_sees_nor_opens_the_reports(page, login, merchandiser):
    login("merch", "merch-pass-123")

    assert "Reports" not in page.locator("nav.main-nav a").all_inner_texts()
    response = page.goto("/dashboard/privacy/reports/")

    assert response.status == 403
    page.watch.problems[:] = [
        p for p in page.watch.problems if "status of 403 (Forbidden)" not in p
    ]
