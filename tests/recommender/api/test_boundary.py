"""Values refused at the API's boundary, each with a clear 4xx naming the field, never a 500 and
never half-written: timestamps out of years 1-9999, control characters and unpaired surrogates,
ids outside the URL-safe alphabet, JSON values of the wrong type, empty query parameters.

Bodies holding an unpaired surrogate are sent as JSON text with ``\\ud800`` escapes, as a
client sends them (Python cannot encode such a string as UTF-8).
"""

import json
from datetime import UTC, datetime

import pytest

from recommender.models import Customer, Event, Product
from recsite.api.renderers import SafeJSONRenderer

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/batch"
CUSTOMERS = "/api/v1/customers/batch"
EVENTS = "/api/v1/events/batch"
OUT_OF_RANGE = "0001-01-01T00:00:00+01:00"  # An hour before the earliest moment in UTC.


def _post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def history(db):
    mug = Product.objects.create(external_id="P1", title="Mug")
    customer = Customer.objects.create(external_id="C1")
    Event.objects.create(
        event_id="e1",
        customer=customer,
        product=mug,
        event_type="view",
        occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
    )


# Timestamps out of years 1-9999 (Python's datetime range) ---------------------------------------


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        (f"/api/v1/events/?since={OUT_OF_RANGE.replace('+', '%2B')}", "event_id", ["e1"]),
        (f"/api/v1/events/?until={OUT_OF_RANGE.replace('+', '%2B')}", "event_id", []),
        (
            "/api/v1/events/?until=9999-12-31T23:59:59-01:00&since=2024-05-01T00:00:00Z",
            "event_id",
            ["e1"],
        ),
        (
            f"/api/v1/customers/?created_since={OUT_OF_RANGE.replace('+', '%2B')}",
            "customer_id",
            ["C1"],
        ),
        (
            f"/api/v1/products/?updated_since={OUT_OF_RANGE.replace('+', '%2B')}",
            "product_id",
            ["P1"],
        ),
    ],
)
def test_a_range_bound_beyond_year_1_or_9999_selects_as_the_earliest_or_latest(
    read_client, history, url, key, expected
):
    # Was a 500 (OverflowError): the bound is taken as the earliest or latest moment.
    response = read_client.get(url)

    assert response.status_code == 200
    assert [row[key] for row in response.json()["results"]] == expected


def test_an_event_whose_offset_moves_it_before_year_1_is_refused_by_rule(ingest_client, history):
    # given
    item = {"customer_id": "C2", "product_id": "P1", "event_type": "view"}
    # when
    response = _post(ingest_client, EVENTS, {"items": [{**item, "timestamp": OUT_OF_RANGE}]})
    # then
    message = f"outside years 1 to 9999 once moved to UTC: {OUT_OF_RANGE!r}"
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"1 of 1 item is invalid; nothing was written. First: items[0].timestamp: "
        f"{message}",
        "errors": [{"index": 0, "field": "timestamp", "message": message}],
    }
    assert Event.objects.count() == 1


# Control characters and unpaired surrogates (items 1 and 2) --------------------------------------


def test_a_lone_surrogate_in_a_product_title_is_refused_naming_it(ingest_client):
    response = ingest_client.post(
        PRODUCTS,
        '{"items": [{"product_id": "P9", "title": "Mug \\ud800"}]}',
        content_type="application/json",
    )

    message = "contains an unpaired UTF-16 surrogate (U+D800)"
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 0, "field": "title", "message": message}]
    assert Product.objects.count() == 0


def test_a_lone_surrogate_in_a_search_query_of_a_batch_is_refused_naming_it(ingest_client):
    response = ingest_client.post(
        EVENTS,
        '{"items": [{"customer_id": "C1", "event_type": "search", '
        '"timestamp": "2024-05-01T10:00:00Z", "search_query": "red \\udc00 mug"}]}',
        content_type="application/json",
    )

    message = "contains an unpaired UTF-16 surrogate (U+DC00)"
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 0, "field": "search_query", "message": message}]
    assert Event.objects.count() == 0


def test_a_nul_character_is_refused_before_it_reaches_postgresql(ingest_client):
    response = _post(ingest_client, PRODUCTS, {"items": [{"product_id": "P9", "title": "a\x00"}]})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 0, "field": "title", "message": "contains a control character (U+0000)"}
    ]


@pytest.mark.parametrize(
    ("url", "item"),
    [
        (CUSTOMERS, '{"customer_id": "C9", "attributes": {"note": "x\\ud800"}}'),
        (PRODUCTS, '{"product_id": "P9", "title": "Mug", "attributes": {"note": "x\\ud800"}}'),
    ],
    ids=["customer", "product"],
)
def test_a_lone_surrogate_inside_attributes_is_refused_and_nothing_is_stored(
    ingest_client, url, item
):
    # Was accepted (200); every later read of the record answered 500.
    response = ingest_client.post(url, f'{{"items": [{item}]}}', content_type="application/json")

    message = "contains an unpaired UTF-16 surrogate (U+D800)"
    assert response.status_code == 422  # The attributes are free-form: a rule, not the schema.
    assert response.json()["errors"] == [
        {"index": 0, "field": "attributes.note", "message": message}
    ]
    assert (Customer.objects.count(), Product.objects.count()) == (0, 0)


def test_a_record_stored_with_a_surrogate_before_this_still_renders():
    # SQLite stored such values; the renderer escapes what UTF-8 cannot encode, not a 500.
    body = SafeJSONRenderer().render({"attributes": {"note": "x\ud800"}, "title": "Caf\u00e9"})

    assert body == b'{"attributes":{"note":"x\\ud800"},"title":"Caf\\u00e9"}'
    assert SafeJSONRenderer().render({"title": "Caf\u00e9"}) == '{"title":"Café"}'.encode()


EMPTY = "must not be empty; leave the parameter out instead"


@pytest.mark.parametrize(
    ("url", "field", "message"),
    [
        ("/api/v1/products/?q=mug%01", "q", "contains a control character (U+0001)"),
        ("/api/v1/customers/at-risk?band=", "band", EMPTY),  # Was read as "every band".
        ("/api/v1/events/?cursor=", "cursor", EMPTY),
        ("/api/v1/products/?category=", "category", EMPTY),
    ],
)
def test_query_parameters_are_refused_when_empty_or_holding_control_characters(
    read_client, url, field, message
):
    response = read_client.get(url)

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }


# Ids outside the alphabet (item 3) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "item", "field"),
    [
        (CUSTOMERS, {"customer_id": "a/b"}, "customer_id"),
        (PRODUCTS, {"product_id": "a/b", "title": "Mug"}, "product_id"),
        (PRODUCTS, {"product_id": "..", "title": "Mug"}, "product_id"),
        (
            EVENTS,
            {"customer_id": "a b", "product_id": "P1", "event_type": "view",
             "timestamp": "2024-05-01T10:00:00Z"},
            "customer_id",
        ),
    ],
)  # fmt: skip
def test_an_id_outside_the_url_safe_alphabet_is_refused_at_ingestion(
    ingest_client, history, url, item, field
):
    response = _post(ingest_client, url, {"items": [item]})

    message = (
        "must use only ASCII letters, digits and - . _ ~ : @ (at least one letter or digit), "
        f"got {item[field]!r}"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 0, "field": field, "message": message}]
    assert (Customer.objects.count(), Product.objects.count()) == (1, 1)


def test_a_customer_stored_with_a_slash_before_this_can_still_be_read_and_forgotten(
    read_client, ingest_client
):
    # given: an id from before the alphabet (its detail URL answered an HTML 404)
    Customer.objects.create(external_id="shop/42")
    # when
    read = read_client.get("/api/v1/customers/shop%2F42/")
    forgotten = ingest_client.delete("/api/v1/customers/shop%2F42/")
    again = read_client.get("/api/v1/customers/shop%2F42/")
    # then
    assert (read.status_code, read.json()["customer_id"]) == (200, "shop/42")
    assert (forgotten.status_code, forgotten.json()) == (200, {"deleted_events": 0})
    assert (again.status_code, again.json()) == (404, {"detail": "Customer 'shop/42' not found."})
    assert Customer.objects.count() == 0


# JSON types (item 4) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ({"product_id": "P9", "title": 5}, "title", "expected a string, got integer"),
        ({"product_id": 9, "title": "Mug"}, "product_id", "expected a string, got integer"),
        ({"product_id": "P9", "title": "Mug", "is_active": None}, "is_active",
         "expected true or false, got null"),
        ({"product_id": "P9", "title": "Mug", "is_active": "no"}, "is_active",
         "expected true or false, got 'no'"),
        ({"product_id": "P9", "title": "Mug", "price": "12"}, "price",
         "expected a number, got a string ('12')"),
        ({"product_id": "P9", "title": "Mug", "tags": "a|b"}, "tags",
         "expected a list of strings"),
        ({"product_id": "P9", "title": "Mug", "description": None}, "description",
         "expected a string, got null"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_json_type_is_refused_not_converted(
    ingest_client, item, field, message
):
    response = _post(ingest_client, PRODUCTS, {"items": [item]})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 0, "field": field, "message": message}]
    assert Product.objects.count() == 0


def test_an_empty_batch_is_refused_as_the_schema_says(ingest_client):
    # The document declares 1 to RECSITE_API_MAX_BATCH items (tests/recommender/api/test_openapi).
    response = _post(ingest_client, PRODUCTS, {"items": []})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "items", "message": "must contain at least 1 item"}
    ]


# Answers under /api/ are JSON (item 4) ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/rules/null,null/", "/api/v1/jobs/abc/", "/api/"]
)
def test_an_unknown_url_under_api_answers_json_404(read_client, path):
    # Was Django's HTML page.
    response = read_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"No API endpoint at {path}; the endpoints are listed at /api/docs/."
    }


def test_an_unknown_api_version_answers_json_404(read_client):
    response = read_client.get("/api/v9/products/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid version in URL path."}


def test_an_unknown_url_elsewhere_still_answers_html(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs/9223372036854775808/", "/api/v1/rules/99999999999999999999/"]
)
def test_an_integer_id_beyond_64_bits_is_404_not_a_database_error(admin_client_api, path):
    response = admin_client_api.get(path)

    assert response.status_code == 404
