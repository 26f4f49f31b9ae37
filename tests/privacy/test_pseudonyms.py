"""Pseudonymous customer ids: stored as a keyed hash at every door, found by the shop's id, the
key rotated without the shop's ids; customer attributes pass an allow-list."""

import csv
import gzip
import hashlib
import hmac
import itertools
from dataclasses import replace
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from privacy.keys import customer_key
from privacy.models import ForgetRequest
from privacy.services.checks import customer_check
from recommender.ingestion.records import EventRecord, derived_event_id
from recommender.models import Customer, Event, Product
from recommender.services.imports import online_retail_import_file
from tests.privacy.dump import database_dump, holding, text_values

CUSTOMERS = "/api/v1/customers/batch"
PRODUCTS = "/api/v1/products/batch"
EVENTS = "/api/v1/events/batch"


def _h(value: str, key: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def pseudonymous(settings):
    settings.RECSITE_PSEUDONYMOUS_IDS = True
    settings.RECSITE_ID_KEY = "first-key"
    return settings


@pytest.mark.django_db
def test_every_door_stores_the_pseudonym_and_every_lookup_hashes_the_same_way(
    pseudonymous, ingest_client, admin_client_api
):
    stored = "p_" + _h("shop-42", "first-key")
    ingest_client.post(PRODUCTS, {"items": [{"product_id": "P1", "title": "Mug"}]}, format="json")

    created = ingest_client.post(
        CUSTOMERS, {"items": [{"customer_id": "shop-42", "attributes": {"tier": "gold"}}]},
        format="json",
    )  # fmt: skip
    events = ingest_client.post(
        EVENTS,
        {"items": [
            {"event_id": "e-1", "customer_id": "shop-42", "product_id": "P1",
             "event_type": "view", "timestamp": "2024-05-01T10:00:00Z"},
            {"customer_id": "shop-43", "product_id": "P1", "event_type": "view",
             "timestamp": "2024-05-01T10:00:00Z"},
        ]},
        format="json",
    )  # fmt: skip

    assert (created.status_code, events.status_code) == (200, 200)
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == sorted(
        [stored, "p_" + _h("shop-43", "first-key")]
    )
    # An event sent without an id gets one derived from the pseudonym, not the shop's id.
    derived = Event.objects.exclude(event_id="e-1").get().event_id
    sent = EventRecord(
        event_id="", customer_id="shop-43", product_id="P1", event_type="view",
        occurred_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )  # fmt: skip
    assert derived == derived_event_id(replace(sent, customer_id="p_" + _h("shop-43", "first-key")))
    assert derived != derived_event_id(sent)
    # Lookups by the shop's id (and by the stored id the answers show) find the customer.
    detail = admin_client_api.get("/api/v1/customers/shop-42/")
    assert detail.status_code == 200
    assert detail.json()["customer_id"] == stored
    assert admin_client_api.get(f"/api/v1/customers/{stored}/").status_code == 200
    listed = admin_client_api.get("/api/v1/events/", {"customer": "shop-42"}).json()["results"]
    assert [e["event_id"] for e in listed] == ["e-1"]
    # Forgetting by the shop's id records the pseudonym's key; the check finds it by the shop's id.
    assert admin_client_api.delete("/api/v1/customers/shop-42/").status_code == 200
    request = ForgetRequest.objects.get()
    assert request.customer_key == customer_key(stored)
    assert [r.pk for r in customer_check(external_id="shop-42").requests] == [request.pk]


@pytest.mark.django_db
def test_rotating_the_key_rehashes_every_stored_id_without_the_shops_ids(
    pseudonymous, ingest_client, admin_client_api
):
    ingest_client.post(CUSTOMERS, {"items": [{"customer_id": "shop-42"}]}, format="json")
    customer_forget_key = customer_key("p_" + _h("shop-42", "first-key"))

    out = StringIO()
    call_command("rotate_id_key", "--new-key", "second-key", stdout=out)

    assert out.getvalue().splitlines() == [
        "1 customer ids rehashed. Set everywhere, then restart:",
        "RECSITE_ID_KEY=first-key,second-key",
    ]
    rotated = "p_" + _h(_h("shop-42", "first-key"), "second-key")
    assert list(Customer.objects.values_list("external_id", flat=True)) == [rotated]
    pseudonymous.RECSITE_ID_KEY = "first-key,second-key"
    assert admin_client_api.get("/api/v1/customers/shop-42/").json()["customer_id"] == rotated
    # A forget request recorded before the rotation is still found by the shop's id.
    from privacy.keys import shop_customer_keys

    assert customer_forget_key in shop_customer_keys("shop-42")


@pytest.mark.django_db
def test_rotation_needs_pseudonymous_ids(settings):
    from django.core.management import CommandError

    settings.RECSITE_PSEUDONYMOUS_IDS = False
    with pytest.raises(CommandError, match="RECSITE_PSEUDONYMOUS_IDS is off"):
        call_command("rotate_id_key", stdout=StringIO())


CONTACT = "contact details are not stored (RECSITE_CUSTOMER_CONTACT_ATTRIBUTES=1 allows them)"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attributes", "field", "message"),
    [
        ({"email": "ann.lee@example.com"}, "attributes.email", "looks like an e-mail address"),
        ({"note": "call +44 20 7946 0958"}, "attributes.note", "looks like a phone number"),
        ({"phone": "+44 20 7946 0958"}, "attributes.phone", "looks like a phone number"),
        ({"contacts": ["x", "(020) 7946-0958"]}, "attributes.contacts[1]",
         "looks like a phone number"),
        ({"profile": {"mail": "a@b.co"}}, "attributes.profile.mail",
         "looks like an e-mail address"),
        ({"loyalty": 1234567890}, None, None),
        ({"loyalty": "1234567890"}, None, None),
        ({"signup": "2024-05-01"}, None, None),
        ({"birthday": "01/05/1990"}, None, None),
        ({"size": "42"}, None, None),
        ({"home": "020 7946 0958"}, "attributes.home", "looks like a phone number"),
        ({"mobile": "07700900123"}, "attributes.mobile", "looks like a phone number"),
    ],
)  # fmt: skip
def test_attributes_that_look_like_contact_details_are_refused_naming_the_field(
    attributes, field, message, ingest_client
):
    response = ingest_client.post(
        CUSTOMERS, {"items": [{"customer_id": "K1", "attributes": attributes}]}, format="json"
    )
    if field is None:
        assert response.status_code == 200
        assert Customer.objects.get().attributes == attributes
    else:
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"index": 0, "field": field, "message": f"{message}; {CONTACT}"}
        ]
        assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_the_attribute_allow_list_and_the_contact_switch(ingest_client, settings):
    settings.RECSITE_CUSTOMER_ATTRIBUTES = ["country", "email"]
    refused = ingest_client.post(
        CUSTOMERS, {"items": [{"customer_id": "K1", "attributes": {"tier": "gold"}}]},
        format="json",
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{
        "index": 0, "field": "attributes.tier",
        "message": "not an allowed attribute (RECSITE_CUSTOMER_ATTRIBUTES: country, email)",
    }]  # fmt: skip
    settings.RECSITE_CUSTOMER_CONTACT_ATTRIBUTES = True
    allowed = ingest_client.post(
        CUSTOMERS, {"items": [{"customer_id": "K1", "attributes": {"email": "a@b.co"}}]},
        format="json",
    )  # fmt: skip
    assert allowed.status_code == 200
    assert Customer.objects.get().attributes == {"email": "a@b.co"}


def _retail_slice(source, target, lines):
    with gzip.open(source, "rt", encoding="utf-8", newline="") as src:
        head = list(itertools.islice(src, lines + 1))
    target.write_text("".join(head), encoding="utf-8")
    return target


@pytest.mark.django_db(transaction=True)
def test_a_pseudonymous_online_retail_import_stores_no_shop_customer_id(
    pseudonymous, shared_data, tmp_path
):
    # Given the first 5,000 lines of the Online Retail export
    path = _retail_slice(
        shared_data / "online_retail" / "online_retail_2010-12_2011-12.csv.gz",
        tmp_path / "slice.csv",
        5_000,
    )
    online_retail_import_file(path=path)
    with path.open(encoding="utf-8", newline="") as rows:
        column = [row["CustomerID"] for row in csv.DictReader(rows)]
    shop_ids = {value.removesuffix(".0") for value in column if value}
    # A stock code may read like a customer id (17003 is both): the product keeps its code.
    products = set(Product.objects.values_list("external_id", flat=True))
    shop_ids -= products
    # Customers with only cancelled or non-product lines are skipped by the import.
    assert 100 < Customer.objects.count() <= len(shop_ids)

    # When the database is dumped
    values = text_values(database_dump())

    # Then no text in it holds a shop's customer id, and every customer is a pseudonym
    assert holding(values, shop_ids) == set()
    assert all(c.startswith("p_") for c in Customer.objects.values_list("external_id", flat=True))
    # The same import without pseudonyms does hold them (the dump search finds ids).
    pseudonymous.RECSITE_PSEUDONYMOUS_IDS = False
    online_retail_import_file(path=path)
    plain = set(Customer.objects.exclude(external_id__startswith="p_").values_list(
        "external_id", flat=True))  # fmt: skip
    assert len(plain) == Customer.objects.filter(external_id__startswith="p_").count()
    assert holding(text_values(database_dump()), shop_ids) == plain - products
