"""The merchandising rule pages with Django's test client: list, create, edit, delete, refusals
shown next to the field with nothing saved, and who may open them."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from recommender.models import MerchandisingRule, Product, RecommendationLog
from recommender.services.merchandising import (
    merchandising_rule_create,
    merchandising_rules_cache_reset,
)
from tests.recommender.shop import fresh_serving, shop

__all__ = ["fresh_serving", "shop"]

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Hero mug",
    "action": "pin",
    "target_kind": "product",
    "target_values": "MUG-1",
    "position": "1",
    "priority": "0",
    # The boxes a browser sends for the form's default: every list.
    "surfaces": ["customer", "session", "similar", "bought_together", "trending"],
    "is_active": "on",
}


@pytest.fixture(autouse=True)
def _no_cached_rules():
    merchandising_rules_cache_reset()
    yield
    merchandising_rules_cache_reset()


@pytest.fixture
def products(db):
    Product.objects.create(external_id="MUG-1", title="Mug", category="Kitchen", brand="Acme")
    Product.objects.create(external_id="MUG-2", title="Blue mug", category="Kitchen")
    Product.objects.create(external_id="LAMP-1", title="Lamp", category="Home", brand="Acme")


@pytest.fixture
def merch(client, merchandiser) -> Client:
    client.force_login(merchandiser)
    return client


def field_errors(html: str, field: str) -> list[str]:
    block = re.search(rf'<ul class="errorlist" id="errors-{field}">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", block.group(1)) if block else []


def test_a_merchandiser_creates_a_rule_through_the_form(merch, merchandiser, products):
    response = merch.post("/dashboard/rules/new/", FORM)

    assert (response.status_code, response["Location"]) == (302, "/dashboard/rules/")
    rule = MerchandisingRule.objects.get()
    assert (rule.name, rule.action, rule.target_values, rule.position, rule.created_by) == (
        "Hero mug",
        "pin",
        ["MUG-1"],
        1,
        merchandiser,
    )
    page = merch.get("/dashboard/rules/").content.decode()
    assert "Rule “Hero mug” created." in page
    assert f'data-rule-id="{rule.pk}"' in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"starts_at": "2026-07-02T10:00", "ends_at": "2026-07-01T10:00"}, "ends_at",
         "must be after the start"),
        ({"target_values": "MUG-1, NOPE"}, "target_values", "unknown product ids: NOPE"),
        ({"position": "0"}, "position", "must be 1 or more, got 0"),
        ({"action": "boost", "target_kind": "brand", "target_values": "Acme", "factor": "-1"},
         "factor", "must be greater than 1, got -1 (a bury sinks products)"),
        ({"position": "first"}, "position", "Enter a whole number."),
    ],
)  # fmt: skip
def test_a_bad_rule_is_shown_next_to_its_field_and_nothing_is_saved(
    merch, products, changes, field, message
):
    response = merch.post("/dashboard/rules/new/", {**FORM, **changes})

    assert response.status_code == 200
    assert field_errors(response.content.decode(), field) == [message]
    assert MerchandisingRule.objects.count() == 0


def test_the_list_shows_each_rules_state_target_and_matching_products(merch, products):
    merchandising_rule_create(
        data={"name": "Acme", "action": "boost", "target_kind": "brand",
              "target_values": ["Acme"], "factor": 1.5, "priority": 3}
    )  # fmt: skip
    merchandising_rule_create(
        data={"name": "Off", "action": "filter", "target_kind": "out_of_stock",
              "is_active": False, "surfaces": ["similar", "trending"]}
    )  # fmt: skip

    html = merch.get("/dashboard/rules/").content.decode()

    rows = re.findall(r"<tr data-rule-id=\"\d+\">(.*?)</tr>", html, re.S)
    cells = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]
    assert [row[1:8] for row in cells] == [
        ["Boost (multiply the score) \u00d71.5", "Brands: Acme", "all lists", "2", "3", "always",
         "active"],
        ["Filter out", "out of stock", "Similar products, Trending", "0", "0", "always", "off"],
    ]  # fmt: skip


def test_the_form_saves_the_lists_ticked_and_refuses_none(merch, products):
    ticked = merch.post("/dashboard/rules/new/", {**FORM, "surfaces": ["customer", "trending"]})
    none = merch.post("/dashboard/rules/new/", {**FORM, "name": "Nowhere", "surfaces": []})

    assert ticked.status_code == 302
    assert MerchandisingRule.objects.get().surfaces == ["customer", "trending"]
    assert none.status_code == 200
    assert field_errors(none.content.decode(), "surfaces") == [
        "choose at least one list for the rule to apply to"
    ]
    assert MerchandisingRule.objects.count() == 1
    edit = merch.get(f"/dashboard/rules/{MerchandisingRule.objects.get().pk}/edit/")
    checked = re.findall(
        r'<input type="checkbox" name="surfaces" value="(\w+)"[^>]*checked', edit.content.decode()
    )
    assert checked == ["customer", "trending"]


def test_an_edit_is_saved_and_a_refused_edit_changes_nothing(merch, products):
    rule = merchandising_rule_create(
        data={"name": "Hero", "action": "pin", "target_kind": "product",
              "target_values": ["MUG-1"], "position": 2}
    )  # fmt: skip
    form = merch.get(f"/dashboard/rules/{rule.pk}/edit/").content.decode()
    assert 'name="target_values" value="MUG-1"' in form

    refused = merch.post(f"/dashboard/rules/{rule.pk}/edit/", {**FORM, "position": "-3"})
    saved = merch.post(f"/dashboard/rules/{rule.pk}/edit/", {**FORM, "target_values": "MUG-2"})

    assert field_errors(refused.content.decode(), "position") == ["must be 1 or more, got -3"]
    assert saved.status_code == 302
    rule.refresh_from_db()
    assert (rule.target_values, rule.position, rule.name) == (["MUG-2"], 1, "Hero mug")


def test_delete_asks_first_then_deletes(merch, products):
    rule = merchandising_rule_create(
        data={"name": "Gone", "action": "filter", "target_kind": "category",
              "target_values": ["Home"]}
    )  # fmt: skip

    confirm = merch.get(f"/dashboard/rules/{rule.pk}/delete/")
    assert MerchandisingRule.objects.count() == 1
    deleted = merch.post(f"/dashboard/rules/{rule.pk}/delete/")

    assert confirm.status_code == 200
    assert deleted.status_code == 302
    assert MerchandisingRule.objects.count() == 0


def test_an_admin_may_edit_rules_too(client, admin_user, products):
    client.force_login(admin_user)

    assert client.post("/dashboard/rules/new/", FORM).status_code == 302


def test_anonymous_visitors_go_to_the_login_page_and_people_without_a_role_get_403(
    client, products
):
    anonymous = client.get("/dashboard/rules/new/")
    client.force_login(get_user_model().objects.create_user("nobody", password="x-pass-123"))
    nobody = client.post("/dashboard/rules/new/", FORM)

    assert (anonymous.status_code, anonymous["Location"]) == (
        302,
        "/accounts/login/?next=/dashboard/rules/new/",
    )
    assert nobody.status_code == 403
    assert MerchandisingRule.objects.count() == 0


def test_an_unknown_rule_is_a_404(merch):
    assert merch.get("/dashboard/rules/999/edit/").status_code == 404


def listed(html: str, list_id: str) -> list[str]:
    table = re.search(rf'<table class="table" id="{list_id}">(.*?)</table>', html, re.S)
    return re.findall(r'data-product-id="([^"]+)"', table.group(1)) if table else []


def test_preview_shows_the_draft_rule_on_a_customer_list_and_saves_nothing(
    client, merchandiser, shop
):
    client.force_login(merchandiser)
    merchandising_rule_create(
        data={"name": "No lamps", "action": "filter", "target_kind": "category",
              "target_values": ["Home"]}
    )  # fmt: skip
    draft = {**FORM, "target_values": "COF-1", "starts_at": "2099-01-01T00:00",
             "preview_customer": "C1", "preview": "1"}  # fmt: skip

    response = client.post("/dashboard/rules/new/", draft)

    html = response.content.decode()
    assert response.status_code == 200
    assert listed(html, "preview-before")[:3] == ["INK-3", "LAMP-1", "LAMP-2"]
    # With the saved filter and the draft pin (its future start is ignored by the preview).
    assert listed(html, "preview-after")[:3] == ["COF-1", "INK-3", "MUG-2"]
    assert "pinned at position 1 by rule “Hero mug”" in html
    assert MerchandisingRule.objects.count() == 1


def test_preview_refuses_an_unknown_customer_or_a_bad_rule_next_to_the_field(merch, products):
    unknown = merch.post(
        "/dashboard/rules/new/", {**FORM, "preview_customer": "X9", "preview": "1"}
    )
    bad = merch.post(
        "/dashboard/rules/new/", {**FORM, "position": "0", "preview_customer": "", "preview": "1"}
    )

    assert field_errors(unknown.content.decode(), "preview_customer") == ["unknown customer: X9"]
    assert field_errors(bad.content.decode(), "position") == ["must be 1 or more, got 0"]
    assert MerchandisingRule.objects.count() == 0


def test_preview_of_a_rule_off_the_chosen_list_says_it_cannot_show_it(client, merchandiser, shop):
    client.force_login(merchandiser)
    draft = {**FORM, "target_values": "COF-1", "surfaces": ["similar"],
             "preview_customer": "C1", "preview": "1"}  # fmt: skip

    html = client.post("/dashboard/rules/new/", draft).content.decode()

    message = re.search(r'<p class="empty" id="preview-message">(.*?)</p>', html)
    assert message is not None
    assert message.group(1) == (
        "This rule does not apply to “For a customer” lists, so that list cannot show it; "
        "tick it under “Applies to” or preview another list."
    )
    assert 'id="preview-after"' not in html
    assert MerchandisingRule.objects.count() == 0


def test_preview_on_a_products_similar_list_and_on_trending(client, merchandiser, shop):
    client.force_login(merchandiser)
    lantern = {**FORM, "name": "Lantern", "target_values": "LAMP-2", "preview": "1"}

    similar = client.post(
        "/dashboard/rules/new/",
        {**lantern, "preview_list": "similar", "preview_product": "MUG-1"},
    ).content.decode()
    trending = client.post(
        "/dashboard/rules/new/", {**lantern, "preview_list": "trending"}
    ).content.decode()

    # MUG-1's similar products by meaning, then with the draft pin at position 1.
    assert listed(similar, "preview-before")[:4] == ["MUG-2", "COF-1", "LAMP-1", "LAMP-2"]
    assert listed(similar, "preview-after")[:4] == ["LAMP-2", "MUG-2", "COF-1", "LAMP-1"]
    assert listed(trending, "preview-before")[:3] == ["LAMP-1", "LAMP-2", "INK-2"]
    assert listed(trending, "preview-after")[:3] == ["LAMP-2", "LAMP-1", "INK-2"]
    assert "pinned at position 1 by rule “Lantern”" in similar
    assert MerchandisingRule.objects.count() == 0
    assert RecommendationLog.objects.count() == 0


def test_a_product_list_preview_needs_a_known_product(merch, products):
    missing = merch.post(
        "/dashboard/rules/new/", {**FORM, "preview_list": "bought_together", "preview": "1"}
    )
    unknown = merch.post(
        "/dashboard/rules/new/",
        {**FORM, "preview_list": "session", "preview_product": "NOPE", "preview": "1"},
    )

    assert field_errors(missing.content.decode(), "preview_product") == [
        "give a product id to preview the rule on"
    ]
    assert field_errors(unknown.content.decode(), "preview_product") == ["unknown product: NOPE"]
    assert MerchandisingRule.objects.count() == 0


def test_preview_without_a_fitted_engine_says_so(merch, products, fresh_serving):
    from recommender.models import Customer

    Customer.objects.create(external_id="C1")

    response = merch.post(
        "/dashboard/rules/new/", {**FORM, "preview_customer": "C1", "preview": "1"}
    )

    message = re.search(
        r'<p class="empty" id="preview-message">(.*?)</p>', response.content.decode()
    )
    assert message is not None
    assert message.group(1) == (
        "No recommendation engine has been fitted yet: run `manage.py train` "
        "or POST /api/v1/jobs/train."
    )
