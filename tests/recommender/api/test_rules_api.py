"""The merchandising rules API (/api/v1/rules/): CRUD, refusals naming the field, who may do
what, and the rules' effect on the recommendation endpoints."""

import pytest

from recommender.models import MerchandisingRule
from recommender.services.merchandising import merchandising_rules_cache_reset

pytestmark = pytest.mark.django_db

PIN = {
    "name": "Hero mug",
    "action": "pin",
    "target_kind": "product",
    "target_values": ["COF-1"],
    "position": 1,
}


@pytest.fixture(autouse=True)
def _no_cached_rules():
    merchandising_rules_cache_reset()
    yield
    merchandising_rules_cache_reset()


def test_a_merchandiser_creates_reads_changes_and_deletes_a_rule(shop, merchandiser_client):
    created = merchandiser_client.post("/api/v1/rules/", PIN, format="json")
    assert created.status_code == 201
    rule_id = created.json()["id"]
    assert {
        k: created.json()[k] for k in (*PIN, "priority", "surfaces", "is_active", "created_by")
    } == {
        **PIN,
        "priority": 0,
        "surfaces": ["customer", "session", "similar", "bought_together", "trending"],
        "is_active": True,
        "created_by": "merch",
    }

    listed = merchandiser_client.get("/api/v1/rules/")
    assert (listed.json()["count"], listed.json()["results"][0]["id"]) == (1, rule_id)

    changed = merchandiser_client.patch(
        f"/api/v1/rules/{rule_id}/",
        {"position": 2, "priority": 5, "surfaces": ["trending", "customer"]},
        format="json",
    )
    assert changed.status_code == 200
    assert (changed.json()["position"], changed.json()["priority"]) == (2, 5)
    assert changed.json()["surfaces"] == ["customer", "trending"]
    assert merchandiser_client.get(f"/api/v1/rules/{rule_id}/").json()["position"] == 2

    deleted = merchandiser_client.delete(f"/api/v1/rules/{rule_id}/")
    assert deleted.status_code == 204
    assert MerchandisingRule.objects.count() == 0
    assert merchandiser_client.get(f"/api/v1/rules/{rule_id}/").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        # Off the documented types and ranges: 400.
        ({**PIN, "position": 0}, 400, "position",
         "Ensure this value is greater than or equal to 1."),
        ({**PIN, "action": "dance"}, 400, "action", '"dance" is not a valid choice.'),
        ({**PIN, "surfaces": []}, 400, "surfaces", "Ensure this field has at least 1 elements."),
        ({**PIN, "name": 7}, 400, "name", "expected a string, got integer"),
        ({**PIN, "is_active": None}, 400, "is_active", "expected a value, got null"),
        ({**PIN, "priority": 1_000_001}, 400, "priority",
         "Ensure this value is less than or equal to 1000000."),
        ({**PIN, "starts_at": "0001-01-01T00:00:00+01:00"}, 422, "starts_at",
         "outside years 1 to 9999 once moved to UTC: '0001-01-01T00:00:00+01:00'"),
        # Documented types, refused by what the rule means: 422.
        ({**PIN, "action": "boost", "target_kind": "category", "target_values": ["Home"],
          "factor": -2}, 422, "factor", "must be greater than 1, got -2 (a bury sinks products)"),
        ({**PIN, "target_values": ["NOPE"]}, 422, "target_values", "unknown product ids: NOPE"),
        ({**PIN, "starts_at": "2026-07-02T00:00:00Z", "ends_at": "2026-07-01T00:00:00Z"}, 422,
         "ends_at", "must be after the start"),
        ({**PIN, "action": "promote", "share": 2}, 422, "share",
         "must be greater than 0 and at most 1, got 2"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_naming_the_field_and_nothing_is_saved(
    shop, merchandiser_client, body, status, field, message
):
    response = merchandiser_client.post("/api/v1/rules/", body, format="json")

    assert response.status_code == status
    assert response.json() == {
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }
    assert MerchandisingRule.objects.count() == 0


def test_a_refused_change_leaves_the_rule_as_it_was(shop, merchandiser_client):
    rule_id = merchandiser_client.post("/api/v1/rules/", PIN, format="json").json()["id"]

    response = merchandiser_client.patch(
        f"/api/v1/rules/{rule_id}/", {"position": -1}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "position", "message": "Ensure this value is greater than or equal to 1."}
    ]
    assert MerchandisingRule.objects.get().position == 1


def test_an_unknown_rule_is_a_404_with_a_message(shop, merchandiser_client):
    response = merchandiser_client.patch("/api/v1/rules/999/", {"priority": 1}, format="json")

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "Merchandising rule 999 not found."},
    )


@pytest.mark.parametrize(
    ("principal", "read", "write"),
    [
        ("anon_client", 401, 401),
        ("read_client", 200, 403),
        ("ingest_client", 403, 403),
        ("merchandiser_client", 200, 201),
        ("admin_client_api", 200, 201),
    ],
)
def test_who_may_read_and_change_rules(shop, request, principal, read, write):
    client = request.getfixturevalue(principal)

    listed = client.get("/api/v1/rules/")
    created = client.post("/api/v1/rules/", PIN, format="json")

    assert (listed.status_code, created.status_code) == (read, write)
    assert MerchandisingRule.objects.count() == (1 if write == 201 else 0)


def test_a_token_cannot_delete_a_rule_and_is_told_why(shop, merchandiser_client, read_client):
    rule_id = merchandiser_client.post("/api/v1/rules/", PIN, format="json").json()["id"]

    response = read_client.delete(f"/api/v1/rules/{rule_id}/")

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "Changing merchandising rules needs a signed-in merchandiser or admin; "
        "API tokens may only read them."
    )
    assert MerchandisingRule.objects.count() == 1


def test_the_pinned_product_is_first_in_the_customer_api_with_the_pin_reason(
    shop, merchandiser_client, read_client
):
    rule_id = merchandiser_client.post("/api/v1/rules/", PIN, format="json").json()["id"]

    response = read_client.get("/api/v1/customers/C1/recommendations", {"k": 3})

    first = response.json()["results"][0]
    assert [r["product"]["product_id"] for r in response.json()["results"]] == [
        "COF-1",
        "INK-3",
        "LAMP-1",
    ]
    assert (first["reason"], first["rule_ids"], first["promoted"]) == (
        "pinned at position 1 by rule “Hero mug”",
        [rule_id],
        False,
    )
    assert response.json()["results"][1]["rule_ids"] == []


def test_promoted_items_are_flagged_in_the_session_api(shop, merchandiser_client, read_client):
    merchandiser_client.post(
        "/api/v1/rules/",
        {"name": "Lamps", "action": "promote", "target_kind": "category",
         "target_values": ["Home"], "share": 0.25},
        format="json",
    )  # fmt: skip

    response = read_client.post(
        "/api/v1/recommendations/session", {"product_ids": ["INK-1"], "k": 4}, format="json"
    )

    results = response.json()["results"]
    assert [r["promoted"] for r in results] == [True, False, False, False]
    assert results[0]["product"]["category"] == "Home"
    assert results[0]["reason"] == "promoted by rule “Lamps”"


def test_a_rule_named_for_similar_lists_shows_in_the_similar_api_only(
    shop, merchandiser_client, read_client
):
    rule_id = merchandiser_client.post(
        "/api/v1/rules/",
        {**PIN, "target_values": ["LAMP-2"], "surfaces": ["similar"]},
        format="json",
    ).json()["id"]

    similar = read_client.get("/api/v1/products/MUG-1/similar", {"k": 2}).json()["results"]
    customer = read_client.get("/api/v1/customers/C1/recommendations", {"k": 3}).json()

    assert [(r["product"]["product_id"], r["rule_ids"]) for r in similar] == [
        ("LAMP-2", [rule_id]),
        ("MUG-2", []),
    ]
    assert similar[0]["reason"] == "pinned at position 1 by rule “Hero mug”"
    assert [r["product"]["product_id"] for r in customer["results"]] == [
        "INK-3",
        "LAMP-1",
        "LAMP-2",
    ]
