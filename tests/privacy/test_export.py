"""The access export: exactly the customer's data, to admins and privacy tokens, audited."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_create
from churn.models import ChurnScore
from privacy.keys import customer_key
from privacy.models import AuditEntry
from recommender.models import Customer, Event, RecommendationLog

pytestmark = pytest.mark.django_db


def _token_client(scope):
    _, raw = api_token_create(name=f"t-{scope}", scopes=[scope])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_export_holds_exactly_the_customers_data(shop, admin_client_api):
    # Given C5 (three purchases), their attributes, a list served and a churn score; and C4
    c5 = Customer.objects.get(external_id="C5")
    Customer.objects.filter(pk=c5.pk).update(attributes={"country": "UK"})
    c5.refresh_from_db()
    served = admin_client_api.get("/api/v1/customers/C5/recommendations", {"k": 2}).json()
    log = RecommendationLog.objects.get(customer=c5)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    c4 = Customer.objects.get(external_id="C4")
    for customer, score, band in ((c5, 0.25, "low"), (c4, 0.9, "high")):
        ChurnScore.objects.create(
            customer=customer, score=score, band=band, model_version="m1", as_of=at, computed_at=at
        )

    # When an admin exports C5
    response = admin_client_api.get("/api/v1/customers/C5/export")

    # Then the document holds C5's data and nobody else's
    assert response.status_code == 200
    body = response.json()
    events = list(Event.objects.filter(customer=c5).order_by("occurred_at", "id"))
    assert set(body) == {
        "format", "version", "exported_at", "customer", "activity", "events", "lists_served",
        "churn_scores", "interest_tags", "relationships", "experiments",
    }  # fmt: skip
    assert body["relationships"] == []  # social's handler: C5 follows nobody
    assert body["experiments"] == []  # experiments' handler: in no experiment
    assert (body["format"], body["version"]) == ("recsite-customer-export", 1)
    assert body["customer"] == {
        "id": "C5", "attributes": {"country": "UK"},
        "created_at": c5.created_at.isoformat(), "updated_at": c5.updated_at.isoformat(),
    }  # fmt: skip
    assert body["activity"] == {"events": 3, "last_event_at": "2024-05-05T09:00:00+00:00"}
    assert body["events"] == [
        {
            "event_id": e.event_id, "product_id": e.product.external_id if e.product else None,
            "event_type": "purchase", "occurred_at": "2024-05-05T09:00:00+00:00", "quantity": 1,
            "value": None, "session_id": "C5-4", "search_query": "",
            "received_at": e.received_at.isoformat(),
        }
        for e in events
    ]  # fmt: skip
    assert [e["product_id"] for e in body["events"]] == ["MUG-1", "MUG-2", "COF-1"]
    assert body["lists_served"] == [
        {
            "recommendation_id": str(log.recommendation_id), "kind": "customer",
            "served_at": log.created_at.isoformat(), "config_version": 1,
            "engine_build": shop.pk,
            "product_ids": [item["product"]["product_id"] for item in served["results"]],
        }
    ]  # fmt: skip
    assert body["churn_scores"] == [
        {
            "as_of": "2024-06-01T00:00:00+00:00", "score": 0.25, "band": "low",
            "model_version": "m1", "drivers": [], "computed_at": "2024-06-01T00:00:00+00:00",
        }
    ]  # fmt: skip
    assert body["interest_tags"] == []
    # ... and the export is audited, naming the customer by key
    entry = AuditEntry.objects.get(action="customer.export")
    assert (entry.actor, entry.target, entry.detail) == (
        "user:boss", f"customer-key:{customer_key('C5')}", {"events": 3},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("privacy", 200), ("read", 403), ("ingest", 403), ("merchandiser", 403),
     ("anon", 401)],
)  # fmt: skip
def test_who_may_export(who, status, shop, admin_client_api, merchandiser_client):
    client = {"admin": admin_client_api, "merchandiser": merchandiser_client,
              "anon": APIClient()}.get(who) or _token_client(who)  # fmt: skip
    response = client.get("/api/v1/customers/C1/export")
    assert response.status_code == status
    assert AuditEntry.objects.filter(action="customer.export").count() == (status == 200)
    if status == 403:
        assert response.json() == {
            "detail": "This endpoint needs the 'privacy' scope (admins hold it)."
        }


def test_exporting_an_unknown_customer_is_a_404(shop, admin_client_api):
    response = admin_client_api.get("/api/v1/customers/NOPE/export")
    assert response.status_code == 404
    assert response.json() == {"detail": "Customer 'NOPE' not found."}
    assert AuditEntry.objects.filter(action="customer.export").count() == 0
