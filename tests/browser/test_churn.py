"""The churn page in a real browser: risk chart, at-risk table, into the customer inspector."""

import pytest

from churn import services
from churn.models import ChurnScore, RiskBand
from recommender.services import recommendations as recommendation_service
from tests.churn.shop import AS_OF, churn_settings, churn_shop
from tests.recommender.shop import fresh_serving

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["churn_settings", "churn_shop", "fresh_serving"]


@pytest.fixture
def scored(churn_shop, fresh_serving):
    recommendation_service.engine_build()
    services.churn_model_train(as_of=AS_OF)
    services.churn_scores_refresh(as_of=AS_OF)
    return churn_shop


def test_merchandiser_opens_churn_sees_at_risk_and_follows_a_customer(
    page, login, merchandiser, scored, shot
):
    login("merch", "merch-pass-123")

    # The menu leads to the churn page; its charts (risk over time, ROC, calibration) draw.
    page.click("nav.main-nav >> text=Churn")
    page.wait_for_function("document.querySelectorAll('.chart[data-drawn=true]').length === 3")
    assert page.locator("nav.main-nav a.current").all_inner_texts() == ["Churn"]
    at_risk = ChurnScore.objects.filter(band__in=[RiskBand.HIGH, RiskBand.MEDIUM])
    rows = page.locator("#at-risk-table tbody tr")
    assert rows.count() == min(at_risk.count(), 50)
    riskiest = at_risk.order_by("-score", "customer__external_id").first()
    assert riskiest is not None
    first = rows.nth(0)
    assert first.locator("td").nth(0).inner_text() == riskiest.customer.external_id
    assert first.locator("td").nth(1).inner_text() == f"{riskiest.score:.2f}"
    assert first.locator("ul.drivers li").count() == len(riskiest.drivers)
    shot(page, "churn")

    # Following the customer link opens the inspector, whose churn panel shows the same risk.
    first.locator("td a").first.click()
    page.wait_for_url(f"**/dashboard/customers/{riskiest.customer.external_id}/")
    page.wait_for_load_state("networkidle")
    panel = page.locator("section[data-fragment-url$='/risk']")
    assert panel.locator(".badge").first.inner_text() == f"{riskiest.get_band_display()} risk"
    shot(page, "customer")
