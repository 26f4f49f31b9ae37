"""Tuning in a real browser: a merchandiser moves a slider and the preview changes before
anything is saved; saving creates a new version that serves at once; bad input is refused next
to its field.

The live server answers from a thread of this process, so the shop's fitted engine (built the
way tests/recommender/shop.py builds it, in a temporary folder) serves it too.
"""

import pytest
from playwright.sync_api import expect

from recommender.models import RecommendationConfig
from recommender.services import tuning
from tests.recommender.shop import fresh_serving, shop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["fresh_serving", "shop"]


@pytest.fixture(autouse=True)
def _fresh_sample():
    tuning.tuning_sample_reset()
    yield
    tuning.tuning_sample_reset()


def after_list(page, customer):
    return page.locator(f'[data-customer="{customer}"] .preview-list.after li')


def open_tuning_for(page, customer):
    page.goto("/dashboard/tuning/")
    expect(page.locator("#tuning-preview .preview")).to_be_visible()
    page.fill("input[name=customers]", customer)
    expect(page.locator(f'#tuning-preview [data-customer="{customer}"]')).to_be_visible()


def test_moving_a_slider_previews_the_change_and_saving_serves_it(
    shop, page, login, merchandiser, shot
):
    login("merch", "merch-pass-123")
    open_tuning_for(page, "C4")
    expect(after_list(page, "C4").first).to_have_attribute("data-product", "MUG-2")
    shot(page, "before")

    # More weight on best sellers: the Home lantern overtakes the mug.
    page.locator("input[type=range][data-for=id_w_popularity]").fill("3")

    expect(after_list(page, "C4").first).to_have_attribute("data-product", "LAMP-1")
    assert page.input_value("input[name=w_popularity]") == "3"
    assert after_list(page, "C4").nth(1).get_attribute("data-product") == "MUG-2"
    before = page.locator('[data-customer="C4"] .preview-list.before li').first
    assert before.get_attribute("data-product") == "MUG-2"
    expect(page.locator('#metric-deltas tr[data-metric="ndcg@10"] td.delta')).to_have_text(
        "-0.3691"
    )
    assert RecommendationConfig.objects.count() == 1  # A preview saves nothing.
    shot(page, "preview")

    page.fill("input[name=note]", "more best sellers")
    page.click("#save-config")
    page.wait_for_load_state("networkidle")

    assert page.locator(".message.success").inner_text() == (
        "Saved configuration version 2; it serves now."
    )
    assert page.locator("#active-version").inner_text() == "v2"
    first = page.locator("#version-table tbody tr").first
    assert first.get_attribute("data-version") == "2"
    assert "more best sellers" in first.inner_text()
    shot(page, "saved")
    served = page.request.get("/api/v1/customers/C4/recommendations?k=2").json()
    assert [r["product"]["product_id"] for r in served["results"]] == ["LAMP-1", "MUG-2"]


def test_a_negative_weight_is_refused_next_to_its_field(shop, page, login, merchandiser, shot):
    login("merch", "merch-pass-123")
    open_tuning_for(page, "C4")

    page.fill("input[name=w_semantic]", "-1")

    expect(page.locator("#errors-w_semantic .errorlist li")).to_have_text(
        "Ensure this value is greater than or equal to 0."
    )
    shot(page, "preview-error")
    page.click("#save-config")
    page.wait_for_load_state("networkidle")
    assert page.locator("#errors-w_semantic .errorlist li").inner_text() == (
        "Ensure this value is greater than or equal to 0."
    )
    assert RecommendationConfig.objects.count() == 1


def test_the_evaluation_page_draws_its_chart(shop, page, login, admin_user, shot):
    from recommender.models import EvaluationRun

    for version, recall in ((1, 0.25), (1, 0.27)):
        EvaluationRun.objects.create(
            config_version=version,
            metrics={"hybrid": {"recall@10": recall, "ndcg@10": 0.1, "coverage@10": 0.2,
                                "ild@10": 0.6}},
            dataset={"customers": 300},
        )  # fmt: skip
    login("boss", "boss-pass-123")

    page.goto("/dashboard/evaluation/")

    expect(page.locator('.chart[data-chart="chart-eval-0"]')).to_have_attribute(
        "data-drawn", "true"
    )
    assert page.locator("#evaluation-runs tbody tr").count() == 2
    assert page.locator("#run-evaluation button").inner_text() == "Run evaluation"
    shot(page, "evaluation")


def test_the_exposure_slots_have_a_slider_and_are_saved(shop, page, login, merchandiser, shot):
    login("merch", "merch-pass-123")
    open_tuning_for(page, "C4")
    expect(page.get_by_text("Products without sales yet")).to_be_visible()

    page.locator("input[type=range][data-for=id_exposure_slots]").fill("3")

    assert page.input_value("input[name=exposure_slots]") == "3"
    expect(page.locator("#tuning-preview .preview")).to_be_visible()
    shot(page, "exposure-slots")
    page.click("#save-config")
    page.wait_for_load_state("networkidle")
    saved = RecommendationConfig.objects.get(is_active=True)
    assert (saved.version, saved.config["exposure_slots"]) == (2, 3)


def test_rotation_is_previewed_on_real_impressions_and_saved_for_an_experiment(
    shop, page, login, merchandiser, shot
):
    from recommender.models import Customer, RecommendationLog

    # given: C4 was shown the mug their list starts with 3 times
    for _ in range(3):
        RecommendationLog.objects.create(
            kind="customer", customer=Customer.objects.get(external_id="C4"),
            product_ids=["MUG-2"],
        )  # fmt: skip
    login("merch", "merch-pass-123")
    open_tuning_for(page, "C4")
    expect(after_list(page, "C4").first).to_have_attribute("data-product", "MUG-2")

    # when: rotation is turned on for customer lists, at rate 1
    page.click("#rotation summary")
    page.fill("input[name=rot_customer_rate]", "1")

    # then: the preview moves the mug to the end of C4's list; nothing serves it yet
    expect(after_list(page, "C4").last).to_have_attribute("data-product", "MUG-2")
    assert after_list(page, "C4").first.get_attribute("data-product") != "MUG-2"
    shot(page, "rotation-preview")
    page.fill("input[name=note]", "rotation for customer lists")
    page.click("#save-config-experiment")
    page.wait_for_load_state("networkidle")

    assert page.locator(".message.success").inner_text() == (
        "Saved configuration version 2 for experiments; version 1 still serves. Name version 2 "
        "as a variant's config_version to test it."
    )
    assert page.locator("#active-version").inner_text() == "v1"
    assert RecommendationConfig.objects.get(version=2).config["rotation"] == {
        "customer": {"rate": 1.0, "hours": 24.0, "min_impressions": 3}
    }
    served = page.request.get("/api/v1/customers/C4/recommendations?k=2").json()
    assert served["results"][0]["product"]["product_id"] == "MUG-2"
    shot(page, "rotation-saved")
