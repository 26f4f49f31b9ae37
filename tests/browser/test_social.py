"""The customer inspector's network panel in a real browser (issue 19)."""

import pytest

from recommender.models import Customer
from recommender.services.recommendations import customer_recommendations
from tests.recommender.shop import fresh_serving, shop
from tests.social.test_social_serving import social_shop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "shop", "social_shop"]  # Fixtures of the social tests' shop.


def test_merchandiser_sees_a_customers_network_and_its_reasons(
    page, live_server, login, merchandiser, social_shop, shot
):
    login("merch", "merch-pass-123")
    page.goto(f"{live_server.url}/dashboard/customers/NEW/")
    page.wait_for_load_state("networkidle")

    # The network panel (the social app's fragment) lists whom NEW follows and trusts.
    panel = page.locator("section[data-fragment-url$='/network']")
    members = panel.locator("table.network-members tbody tr")
    assert members.count() == 3
    assert sorted(members.locator("td:first-child").all_inner_texts()) == ["C1", "C6", "C7"]
    products = panel.locator("table.network-products tbody tr")
    assert products.nth(0).locator("td").nth(1).inner_text() == "2"

    # The final list shows the social source's reasons, counting people and naming nobody.
    served = customer_recommendations(customer=Customer.objects.get(external_id="NEW"), k=10)
    rows = page.locator("#final-list tr.recommendation")
    assert rows.nth(0).get_attribute("data-product") == served.items[0].product.external_id
    assert "2 people you follow bought this" in rows.nth(0).locator("li.reason").all_inner_texts()
    assert "Zed" not in page.locator("#final-list").inner_text()
    assert page.locator("section[data-fragment-url].loading").count() == 0
    shot(page, "customer-network")
