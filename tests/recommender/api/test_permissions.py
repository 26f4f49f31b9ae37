"""Who may call what: every principal against every endpoint, with the exact status.

401 means "who are you?" (no credentials, or a revoked or expired token); 403 means "known, but
not allowed" (a missing scope). Tokens never reach admin endpoints, whatever their scopes.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_token_create, api_token_revoke, user_create_with_role
from jobs.models import Job
from recommender.choices import JobKind
from recommender.models import Customer, Event, Product
from recommender.services.recommendations import engine_build

PRINCIPALS = (
    "anonymous",
    "read_token",
    "ingest_token",
    "read_ingest_token",
    "revoked_token",
    "expired_token",
    "merchandiser",
    "admin",
    "superuser",
)

# One row per requirement, one column per principal, in the order of PRINCIPALS:
#          anon  read  ingest read+ingest revoked expired merch admin super
READ = (401, 200, 403, 200, 401, 401, 200, 200, 200)
INGEST = (401, 403, 200, 200, 401, 401, 403, 200, 200)
ADMIN = (401, 403, 403, 403, 401, 401, 403, 200, 200)
ADMIN_CREATE = (401, 403, 403, 403, 401, 401, 403, 201, 201)
ADMIN_ACCEPTED = (401, 403, 403, 403, 401, 401, 403, 202, 202)
AUTHENTICATED = (401, 200, 200, 200, 401, 401, 200, 200, 200)
ANONYMOUS_OK = (200, 200, 200, 200, 200, 200, 200, 200, 200)


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str  # May name {job} and {token}, filled in from the world fixture.
    statuses: tuple[int, ...]
    body: dict | None = None


ENDPOINTS = {
    "products-list": Endpoint("get", "/api/v1/products/", READ),
    "products-detail": Endpoint("get", "/api/v1/products/P1/", READ),
    "customers-list": Endpoint("get", "/api/v1/customers/", READ),
    "customers-detail": Endpoint("get", "/api/v1/customers/C1/", READ),
    "events-list": Endpoint("get", "/api/v1/events/", READ),
    "products-search": Endpoint("get", "/api/v1/products/search?q=first", READ),
    "products-similar": Endpoint("get", "/api/v1/products/P1/similar?k=3", READ),
    "products-similar-hybrid": Endpoint("get", "/api/v1/products/P1/similar?mode=hybrid", READ),
    "products-bought-together": Endpoint("get", "/api/v1/products/P1/bought-together", READ),
    "products-trending": Endpoint("get", "/api/v1/products/trending", READ),
    "customers-recommendations": Endpoint("get", "/api/v1/customers/C1/recommendations", READ),
    "recommendations-session": Endpoint(
        "post", "/api/v1/recommendations/session", READ, {"product_ids": ["P1"]}
    ),
    "products-batch": Endpoint(
        "post",
        "/api/v1/products/batch",
        INGEST,
        {"items": [{"product_id": "P2", "title": "Second"}]},
    ),
    "customers-batch": Endpoint(
        "post", "/api/v1/customers/batch", INGEST, {"items": [{"customer_id": "C2"}]}
    ),
    "events-batch": Endpoint(
        "post",
        "/api/v1/events/batch",
        INGEST,
        {
            "items": [
                {
                    "event_id": "e-2",
                    "customer_id": "C2",
                    "product_id": "P1",
                    "event_type": "view",
                    "timestamp": "2024-05-01T10:00:00Z",
                }
            ]
        },
    ),
    "customers-delete": Endpoint("delete", "/api/v1/customers/C1/", INGEST),
    "products-delete": Endpoint("delete", "/api/v1/products/P1/", INGEST),
    "jobs-list": Endpoint("get", "/api/v1/jobs/", ADMIN),
    "jobs-detail": Endpoint("get", "/api/v1/jobs/{job}/", ADMIN),
    "jobs-reindex": Endpoint("post", "/api/v1/jobs/reindex", ADMIN_ACCEPTED),
    "jobs-train": Endpoint("post", "/api/v1/jobs/train", ADMIN_ACCEPTED),
    "tokens-list": Endpoint("get", "/api/v1/tokens/", ADMIN),
    "tokens-create": Endpoint(
        "post", "/api/v1/tokens/", ADMIN_CREATE, {"name": "shop", "scopes": ["read"]}
    ),
    "tokens-revoke": Endpoint("delete", "/api/v1/tokens/{token}/", ADMIN),
    "schema": Endpoint("get", "/api/schema/", AUTHENTICATED),
    "docs": Endpoint("get", "/api/docs/", AUTHENTICATED),
    "health-live": Endpoint("get", "/health/live", ANONYMOUS_OK),
    "health-ready": Endpoint("get", "/health/ready", ANONYMOUS_OK),
    "login-page": Endpoint("get", "/accounts/login/", ANONYMOUS_OK),
}


@pytest.fixture
def world(db):
    product = Product.objects.create(external_id="P1", title="First")
    customer = Customer.objects.create(external_id="C1")
    Event.objects.create(
        event_id="e-1",
        customer=customer,
        product=product,
        event_type="view",
        occurred_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
    )
    job = Job.objects.create(kind=JobKind.IMPORT_PRODUCTS)
    victim, _ = api_token_create(name="victim", scopes=["read"])
    engine_build()  # The recommendation endpoints answer 503 until an engine is fitted.
    return {"job": job.pk, "token": victim.pk}


def _token_client(*scopes: str, revoked: bool = False, expired: bool = False) -> APIClient:
    expires_at = timezone.now() - timedelta(minutes=1) if expired else None
    token, raw = api_token_create(name="principal", scopes=scopes, expires_at=expires_at)
    if revoked:
        api_token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _login_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _client_for(principal: str) -> APIClient:
    if principal == "anonymous":
        return APIClient()
    if principal == "read_token":
        return _token_client("read")
    if principal == "ingest_token":
        return _token_client("ingest")
    if principal == "read_ingest_token":
        return _token_client("read", "ingest")
    if principal == "revoked_token":
        return _token_client("read", "ingest", revoked=True)
    if principal == "expired_token":
        return _token_client("read", "ingest", expired=True)
    if principal == "merchandiser":
        return _login_client(
            user_create_with_role(username="merch", password="x-pass-123", role=Role.MERCHANDISER)
        )
    if principal == "admin":
        return _login_client(
            user_create_with_role(username="boss", password="x-pass-123", role=Role.ADMIN)
        )
    if principal == "superuser":
        return _login_client(
            get_user_model().objects.create_superuser(username="root", password="x-pass-123")
        )
    raise AssertionError(principal)


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("endpoint_name", ENDPOINTS)
def test_permission_matrix(world, principal, endpoint_name):
    # given
    endpoint = ENDPOINTS[endpoint_name]
    client = _client_for(principal)
    url = endpoint.url.format(**world)
    # when
    if endpoint.body is None:
        response = getattr(client, endpoint.method)(url)
    else:
        response = getattr(client, endpoint.method)(url, endpoint.body, format="json")
    # then
    assert response.status_code == endpoint.statuses[PRINCIPALS.index(principal)]


@pytest.mark.parametrize(
    ("principal", "status", "body"),
    [
        ("anonymous", 401, {"detail": "Authentication credentials were not provided."}),
        ("revoked_token", 401, {"detail": "Invalid, revoked or expired API token."}),
        ("expired_token", 401, {"detail": "Invalid, revoked or expired API token."}),
        ("read_token", 403, {"detail": "This endpoint needs the 'ingest' scope."}),
        ("merchandiser", 403, {"detail": "This endpoint needs the 'ingest' scope."}),
    ],
)
def test_refusals_say_why(world, principal, status, body):
    response = _client_for(principal).post(
        "/api/v1/products/batch", {"items": [{"product_id": "P9", "title": "x"}]}, format="json"
    )
    assert response.status_code == status
    assert response.json() == body
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("principal", "detail"),
    [
        ("read_ingest_token", "This endpoint is for admins."),
        ("merchandiser", "This endpoint is for admins."),
    ],
)
def test_tokens_cannot_manage_tokens_nor_merchandisers(world, principal, detail):
    response = _client_for(principal).get("/api/v1/tokens/")
    assert response.status_code == 403
    assert response.json() == {"detail": detail}


def test_refused_writes_change_nothing(world):
    # given: a read-only token
    client = _client_for("read_token")
    # when
    batch = client.post(
        "/api/v1/products/batch", {"items": [{"product_id": "P9", "title": "x"}]}, format="json"
    )
    forget = client.delete("/api/v1/customers/C1/")
    # then
    assert (batch.status_code, forget.status_code) == (403, 403)
    assert list(Product.objects.values_list("external_id", flat=True)) == ["P1"]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["C1"]
    assert Event.objects.count() == 1


def test_unsupported_api_version_is_not_found(world):
    response = _client_for("read_token").get("/api/v2/products/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid version in URL path."}
