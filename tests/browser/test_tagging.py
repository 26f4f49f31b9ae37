"""The tag review queue in a real browser: a merchandiser accepts a suggestion."""

import pytest

from tagging.models import ProductTag
from tagging.services import tagging_run
from tests.tagging.catalogue import catalogue_build

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_merchandiser_accepts_a_suggestion_in_the_review_queue(page, login, merchandiser, shot):
    catalogue_build()
    tagging_run()
    yogurt = ProductTag.objects.get(product__external_id="p-yog-1", tag__name="dairy/yogurt")
    login("merch", "merch-pass-123")

    page.click("nav.main-nav >> text=Tags")
    page.wait_for_load_state("networkidle")
    assert page.locator("#kpi-pending").inner_text() == "8"
    shot(page, "queue")
    page.check(f"#pick-{yogurt.pk}")
    page.click("button[name=decision][value=accepted]")
    page.wait_for_load_state("networkidle")

    assert page.locator(".message.success").inner_text() == "1 suggestion accepted."
    assert page.locator("#kpi-pending").inner_text() == "7"
    assert page.locator(f"tr[data-suggestion='{yogurt.pk}']").count() == 0
    page.select_option("select[name=status]", "accepted")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    row = page.locator(f"tr[data-suggestion='{yogurt.pk}']")
    assert row.locator("[data-status]").inner_text() == "accepted"
    shot(page, "accepted")
    yogurt.refresh_from_db()
    assert (yogurt.status, yogurt.decided_by_id) == ("accepted", merchandiser.pk)
