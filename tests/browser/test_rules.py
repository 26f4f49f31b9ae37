"""Merchandising rules in a real browser: a merchandiser pins a product through the form and the
recommendations API serves it first; a bad form shows the error next to its field.

The live server answers from a thread of this process, so the shop's fitted engine (built the
way tests/recommender/shop.py builds it, in a temporary folder) serves it too.
"""

import pytest

from recommender.models import MerchandisingRule
from recommender.services.merchandising import merchandising_rules_cache_reset
from tests.recommender.shop import fresh_serving, shop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "shop"]


@pytest.fixture(autouse=True)
def _no_cached_rules():
    merchandising_rules_cache_reset()
    yield
    merchandising_rules_cache_reset()


def fill_rule(page, **fields):
    page.goto("/dashboard/rules/")
    page.click("#new-rule")
    page.fill("input[name=name]", fields["name"])
    page.select_option("select[name=action]", fields["action"])
    page.select_option("select[name=target_kind]", fields["target_kind"])
    page.fill("input[name=target_values]", fields["target_values"])
    for name in ("position", "factor", "starts_at", "ends_at"):
        if name in fields:
            page.fill(f"input[name={name}]", fields[name])
    page.click("#rule-form button[type=submit]")
    page.wait_for_load_state("networkidle")


def draft_pin(page, *, name, product, position):
    """Open a new rule and fill it in as a pin, without saving."""
    page.goto("/dashboard/rules/new/")
    page.fill("input[name=name]", name)
    page.select_option("select[name=action]", "pin")
    page.fill("input[name=target_values]", product)
    page.fill("input[name=position]", position)


def test_a_pin_rule_made_in_the_form_puts_the_product_first_in_the_api(
    shop, page, login, merchandiser, shot
):
    login("merch", "merch-pass-123")
    before = page.request.get("/api/v1/customers/C1/recommendations?k=3").json()

    fill_rule(
        page, name="Hero coffee", action="pin", target_kind="product", target_values="COF-1",
        position="1",
    )  # fmt: skip

    assert page.url.endswith("/dashboard/rules/")
    assert page.locator(".message.success").inner_text() == "Rule “Hero coffee” created."
    assert page.locator("#rule-list tbody tr").count() == 1
    shot(page, "rules-list")
    after = page.request.get("/api/v1/customers/C1/recommendations?k=3").json()
    rule = MerchandisingRule.objects.get()
    assert [r["product"]["product_id"] for r in before["results"]] == ["INK-3", "LAMP-1", "LAMP-2"]
    assert [r["product"]["product_id"] for r in after["results"]] == ["COF-1", "INK-3", "LAMP-1"]
    assert after["results"][0]["reasons"] == ["pinned at position 1 by rule “Hero coffee”"]
    assert after["results"][0]["rule_ids"] == [rule.pk]


def test_a_rule_that_ends_before_it_starts_is_refused_next_to_the_field(
    shop, page, login, merchandiser, shot
):
    login("merch", "merch-pass-123")

    fill_rule(
        page, name="Backwards", action="boost", target_kind="category", target_values="Home",
        factor="1.5", starts_at="2026-07-02T10:00", ends_at="2026-07-01T10:00",
    )  # fmt: skip

    assert page.url.endswith("/dashboard/rules/new/")
    assert page.locator("#errors-ends_at").inner_text() == "must be after the start"
    assert page.locator("#field-ends_at.has-error").count() == 1
    assert page.locator("input[name=name]").input_value() == "Backwards"  # Input kept.
    shot(page, "rule-form-error")
    assert MerchandisingRule.objects.count() == 0


def test_the_preview_shows_the_draft_rules_effect_before_saving(
    shop, page, login, merchandiser, shot
):
    login("merch", "merch-pass-123")
    draft_pin(page, name="Hero coffee", product="COF-1", position="2")
    page.fill("input[name=preview_customer]", "C1")

    page.click("#preview-button")
    page.wait_for_load_state("networkidle")

    after = page.locator("#preview-after tbody tr")
    assert (
        page.locator("#preview-before tbody tr").first.get_attribute("data-product-id") == "INK-3"
    )
    assert after.nth(1).get_attribute("data-product-id") == "COF-1"
    assert after.nth(1).locator(".reasons li").first.inner_text() == (
        "pinned at position 2 by rule “Hero coffee”"
    )
    assert page.locator("#preview-summary").inner_text() == "5 of 6 positions change."
    shot(page, "rule-preview")
    assert MerchandisingRule.objects.count() == 0


def test_a_rule_ticked_for_trending_only_changes_the_trending_list_only(
    shop, page, login, merchandiser, shot
):
    login("merch", "merch-pass-123")
    draft_pin(page, name="Coffee on trending", product="COF-1", position="1")
    boxes = page.locator("input[name=surfaces]")
    assert boxes.count() == 5
    assert [boxes.nth(i).is_checked() for i in range(5)] == [True] * 5  # A new rule: every list.
    for value in ("customer", "session", "similar", "bought_together"):
        page.uncheck(f"input[name=surfaces][value={value}]")
    shot(page, "form")
    page.click("#rule-form button[name=save]")
    page.wait_for_load_state("networkidle")

    assert page.locator(".message.success").inner_text() == "Rule “Coffee on trending” created."
    assert page.locator("#rule-list tbody tr td").nth(3).inner_text() == "Trending"
    trending = page.request.get("/api/v1/products/trending?k=3").json()["results"]
    customer = page.request.get("/api/v1/customers/C1/recommendations?k=3").json()["results"]
    assert [r["product"]["product_id"] for r in trending] == ["COF-1", "LAMP-1", "LAMP-2"]
    assert [r["product"]["product_id"] for r in customer] == ["INK-3", "LAMP-1", "LAMP-2"]
    assert MerchandisingRule.objects.get().surfaces == ["trending"]


def test_the_preview_shows_a_draft_on_a_products_similar_list(
    shop, page, login, merchandiser, shot
):
    login("merch", "merch-pass-123")
    draft_pin(page, name="Lantern", product="LAMP-2", position="1")
    page.select_option("select[name=preview_list]", "similar")
    page.fill("input[name=preview_product]", "MUG-1")

    page.click("#preview-button")
    page.wait_for_load_state("networkidle")

    def listed(table):
        rows = page.locator(f"#{table} tbody tr")
        return [rows.nth(i).get_attribute("data-product-id") for i in range(rows.count())]

    assert listed("preview-before")[:2] == ["MUG-2", "COF-1"]
    assert listed("preview-after")[:3] == ["LAMP-2", "MUG-2", "COF-1"]
    assert page.locator("select[name=preview_list]").input_value() == "similar"
    shot(page, "similar-preview")
    assert MerchandisingRule.objects.count() == 0
