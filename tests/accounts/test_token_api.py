"""Token management through the API: admins only, raw value shown once, revocation is instant."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token
from accounts.services import api_token_create


def test_admin_creates_a_token_that_works_at_once(admin_client_api):
    # when
    response = admin_client_api.post(
        "/api/v1/tokens/",
        {"name": "shop-prod", "scopes": ["read", "ingest"], "expires_at": "2099-01-01T00:00:00Z"},
        format="json",
    )
    # then
    assert response.status_code == 201
    body = response.json()
    raw = body.pop("token")
    token = ApiToken.objects.get()
    assert token.key_hash == hash_token(raw)
    assert body == {
        "id": token.pk,
        "name": "shop-prod",
        "prefix": raw[:10],
        "scopes": ["ingest", "read"],
        "created_by": "boss",
        "created_at": body["created_at"],
        "last_used_at": None,
        "expires_at": "2099-01-01T00:00:00Z",
        "revoked_at": None,
        "is_active": True,
    }
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/products/").status_code == 200


def test_token_list_never_shows_raw_tokens(admin_client_api):
    first, _ = api_token_create(name="a", scopes=["read"])
    second, _ = api_token_create(name="b", scopes=["ingest"])
    ApiToken.objects.filter(pk=first.pk).update(created_at=datetime(2024, 1, 1, tzinfo=UTC))
    response = admin_client_api.get("/api/v1/tokens/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["id"], row["name"], row["scopes"]) for row in rows] == [
        (second.pk, "b", ["ingest"]),
        (first.pk, "a", ["read"]),
    ]
    assert all("token" not in row and "key_hash" not in row for row in rows)


def test_revoking_a_token_stops_it_at_once(admin_client_api):
    # given
    token, raw = api_token_create(name="old", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/products/").status_code == 200
    # when
    response = admin_client_api.delete(f"/api/v1/tokens/{token.pk}/")
    again = admin_client_api.delete(f"/api/v1/tokens/{token.pk}/")
    # then
    token.refresh_from_db()
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["revoked_at"] is not None
    assert again.status_code == 200
    assert again.json()["revoked_at"] == response.json()["revoked_at"]  # First revocation kept.
    assert client.get("/api/v1/products/").status_code == 401
    assert ApiToken.objects.count() == 1


def test_expired_token_is_listed_as_inactive(admin_client_api):
    api_token_create(name="gone", scopes=["read"], expires_at=timezone.now() - timedelta(seconds=1))
    rows = admin_client_api.get("/api/v1/tokens/").json()["results"]
    assert [(row["name"], row["is_active"]) for row in rows] == [("gone", False)]


@pytest.mark.parametrize(
    ("body", "status", "errors"),
    [
        (
            {"name": "x", "scopes": ["admin"]},
            400,
            [{"field": "scopes[0]", "message": '"admin" is not a valid choice.'}],
        ),
        (
            {"name": "x", "scopes": []},
            400,
            [{"field": "scopes", "message": "Ensure this field has at least 1 elements."}],
        ),
        (
            {"scopes": ["read"]},
            400,
            [{"field": "name", "message": "This field is required."}],
        ),
        (
            {"name": 5, "scopes": ["read"]},
            400,
            [{"field": "name", "message": "expected a string, got integer"}],
        ),
        (
            {"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"},
            422,
            [{"field": "expires_at", "message": "must be in the future"}],
        ),
    ],
    ids=["admin-scope", "no-scope", "no-name", "integer-name", "expired"],
)
def test_bad_token_requests_are_refused_naming_the_field(admin_client_api, body, status, errors):
    response = admin_client_api.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == status
    assert response.json() == {
        "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
        "errors": errors,
    }
    assert ApiToken.objects.count() == 0


def test_revoking_an_unknown_token_is_404(admin_client_api):
    response = admin_client_api.delete("/api/v1/tokens/999/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Token 999 not found."}
