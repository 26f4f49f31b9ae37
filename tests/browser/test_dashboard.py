"""The merchandiser dashboard in a real browser: overview charts, products, customer inspector.

Every page is checked for console errors by the ``page`` fixture and saved as a screenshot.
"""

import pytest

from recommender.models import Customer
from recommender.services.recommendations import customer_recommendations
from tests.recommender.shop import fresh_serving, shop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "shop"]  # Fixtures of the recommendation tests' shop.


def test_merchandiser_sees_the_overview_with_its_charts(page, login, merchandiser, shop, shot):
    login("merch", "merch-pass-123")

    # Signing in lands on the overview; plotly (served by the app) draws its three charts.
    assert page.url.endswith("/dashboard/")
    page.wait_for_selector(".chart[data-drawn=true] .main-svg")
    page.wait_for_function("document.querySelectorAll('.chart[data-drawn=true]').length === 3")
    assert page.locator("#kpi-products").inner_text() == "8"
    assert page.locator("#kpi-events").inner_text() == "17"
    assert page.locator("nav.main-nav a.current").all_inner_texts() == ["Overview"]
    assert page.evaluate("typeof window.Plotly.newPlot") == "function"
    shot(page, "overview")


def test_merchandiser_opens_a_customer_and_sees_reasons(page, login, merchandiser, shop, shot):
    login("merch", "merch-pass-123")

    page.click("nav.main-nav >> text=Customers")
    page.fill("input[name=q]", "C2")
    page.click("#customer-search button[type=submit]")
    shot(page, "customers")
    page.click("#customer-list >> text=C2")
    page.wait_for_selector(".chart[data-drawn=true]")

    served = customer_recommendations(customer=Customer.objects.get(external_id="C2"), k=10)
    rows = page.locator("#final-list tr.recommendation")
    assert rows.count() == len(served.items)
    first = served.items[0]
    assert rows.nth(0).get_attribute("data-product") == first.product.external_id
    assert rows.nth(0).locator("li.reason").all_inner_texts() == list(first.reasons)
    assert page.locator("#candidates table.source").count() == 3
    assert page.locator("#timeline tr.event").count() == 3
    assert page.locator("nav.main-nav a.current").all_inner_texts() == ["Customers"]
    # Panels of other apps (tagging, churn) load into their sections without errors.
    page.wait_for_load_state("networkidle")
    assert page.locator("section[data-fragment-url].loading").count() == 0
    shot(page, "customer")


def test_merchandiser_filters_searches_and_opens_a_product(page, login, merchandiser, shop, shot):
    login("merch", "merch-pass-123")

    page.click("nav.main-nav >> text=Products")
    page.select_option("select[name=category]", "Office")
    page.click("#product-filters button[type=submit]")
    assert page.locator("#product-list td.mono").all_inner_texts() == ["INK-1", "INK-2", "INK-3"]
    shot(page, "products-filtered")
    page.fill("input[name=search]", "printer ink")
    page.click("#semantic-search button[type=submit]")
    assert page.locator("#search-results tbody tr").count() == 8
    shot(page, "products-search")
    page.click("#product-list >> text=INK-1")
    page.wait_for_load_state("networkidle")

    assert page.locator("h1").inner_text() == "HP 78 tri-colour printer ink cartridge"
    behavioural = page.locator("#similar-behavioural tbody tr td:nth-child(2) a")
    assert behavioural.all_inner_texts()[:2] == [
        "Canon black printer ink cartridge",
        "Epson colour printer ink cartridge",
    ]
    shot(page, "product")
