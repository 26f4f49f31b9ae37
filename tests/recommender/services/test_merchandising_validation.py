"""One validation for merchandising rules: the service function, and the same refusal with the
same message through the API (422) and the dashboard's form (next to the field)."""

import html
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from recommender.models import MerchandisingRule, Product
from recommender.services.merchandising import merchandising_rule_create
from recommender.services.merchandising_validation import (
    MerchandisingRuleFields,
    MerchandisingRuleInvalid,
    merchandising_rule_validate,
)

pytestmark = pytest.mark.django_db

API_PIN = {
    "name": "Hero mug",
    "action": "pin",
    "target_kind": "product",
    "target_values": ["MUG-1"],
    "position": 1,
}
FORM_PIN = {
    "name": "Hero mug",
    "action": "pin",
    "target_kind": "product",
    "target_values": "MUG-1",
    "position": "1",
    "priority": "0",
    "surfaces": ["customer", "session", "similar", "bought_together", "trending"],
    "is_active": "on",
}


@pytest.fixture
def products(db):
    Product.objects.create(external_id="MUG-1", title="Mug", category="Kitchen", brand="Acme")
    Product.objects.create(external_id="MUG-2", title="Blue mug", category="Kitchen")


def _form_errors(page: str, field: str) -> list[str]:
    block = re.search(rf'<ul class="errorlist" id="errors-{field}">(.*?)</ul>', page, re.S)
    found = re.findall(r"<li>(.*?)</li>", block.group(1)) if block else []
    return [html.unescape(message) for message in found]


def test_a_valid_rule_comes_back_typed_and_normalised(products):
    fields = merchandising_rule_validate(
        data={
            "name": "  Kitchen sale ",
            "action": "boost",
            "target_kind": "category",
            "target_values": "Kitchen, Kitchen ,",
            "factor": "1.5",
            "position": 3,  # Not a boost's parameter: cleared.
            "price_min": "10",  # Not a category's: cleared.
            "starts_at": datetime(2026, 7, 1, 10, 0),
        }
    )

    assert fields == MerchandisingRuleFields(
        name="Kitchen sale",
        action="boost",
        target_kind="category",
        target_values=["Kitchen"],
        price_min=None,
        price_max=None,
        factor=1.5,
        position=None,
        share=None,
        priority=0,
        surfaces=["customer", "session", "similar", "bought_together", "trending"],
        starts_at=datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        ends_at=None,
        is_active=True,
    )


def test_every_bad_field_is_named_at_once(products):
    with pytest.raises(MerchandisingRuleInvalid) as refused:
        merchandising_rule_validate(
            data={
                "name": " ",
                "action": "promote",
                "target_kind": "price_range",
                "share": 0,
                "price_min": Decimal("5"),
                "price_max": Decimal("2"),
            }
        )

    assert refused.value.errors == {
        "name": "give the rule a name",
        "share": "must be greater than 0 and at most 1, got 0",
        "price_max": "must be at least the minimum price (5), got 2",
    }


def test_a_change_is_checked_with_the_saved_fields(products):
    rule = merchandising_rule_create(data=API_PIN)

    changed = merchandising_rule_validate(data={"position": 4, "unknown": "ignored"}, rule=rule)
    with pytest.raises(MerchandisingRuleInvalid) as refused:
        merchandising_rule_validate(data={"action": "boost"}, rule=rule)

    assert (changed.name, changed.target_values, changed.position) == ("Hero mug", ["MUG-1"], 4)
    assert refused.value.errors == {"factor": "a boost needs a factor greater than 1 (e.g. 1.5)"}


@pytest.mark.parametrize(
    ("api_changes", "form_changes", "field", "message"),
    [
        ({"target_values": ["MUG-1", "NOPE"]}, {"target_values": "MUG-1, NOPE"},
         "target_values", "unknown product ids: NOPE"),
        ({"target_kind": "brand", "target_values": ["Acme"]},
         {"target_kind": "brand", "target_values": "Acme"},
         "target_kind", "a pin targets products: choose 'product'"),
        ({"action": "bury", "target_kind": "brand", "target_values": ["Acme"], "factor": 1.5},
         {"action": "bury", "target_kind": "brand", "target_values": "Acme", "factor": "1.5"},
         "factor", "must be greater than 0 and less than 1, got 1.5"),
        ({"starts_at": "2026-07-02T10:00:00Z", "ends_at": "2026-07-01T10:00:00Z"},
         {"starts_at": "2026-07-02T10:00", "ends_at": "2026-07-01T10:00"},
         "ends_at", "must be after the start"),
    ],
)  # fmt: skip
def test_the_api_and_the_form_refuse_a_rule_with_the_same_message(
    products, merchandiser_client, client, merchandiser, api_changes, form_changes, field, message
):
    api = merchandiser_client.post("/api/v1/rules/", {**API_PIN, **api_changes}, format="json")
    client.force_login(merchandiser)
    page = client.post("/dashboard/rules/new/", {**FORM_PIN, **form_changes})

    assert api.status_code == 422
    assert api.json()["errors"] == [{"field": field, "message": message}]
    assert page.status_code == 200
    assert _form_errors(page.content.decode(), field) == [message]
    assert MerchandisingRule.objects.count() == 0
