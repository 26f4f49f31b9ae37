"""API rate limits: per token (or login, or address) and per scope, 429 with Retry-After past
the rate. Several web processes sharing one Redis count together: tests/integration/
test_rate_limits_live.py."""

from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.urls import resolve

from accounts.throttling import parse_rate, throttle_scope

pytestmark = pytest.mark.django_db

# The throttle counts in fixed one-minute windows: its clock stands still 12 s into a window, so
# no test straddles two windows and the wait it announces is exactly 48 s.
WINDOW_START = 1_800_000_000.0  # a multiple of 60
FROZEN_NOW = WINDOW_START + 12
WAIT = 48


@pytest.fixture
def rates(settings, monkeypatch):
    """Set some scopes' rates (the others keep theirs) for one test, on the frozen clock."""
    monkeypatch.setattr("accounts.throttling.time", SimpleNamespace(time=lambda: FROZEN_NOW))

    def set_rates(**scopes: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                **scopes,
            },
        }

    return set_rates


def _assert_throttled(response) -> None:
    assert response.status_code == 429
    assert response["Retry-After"] == str(WAIT)
    assert response.json() == {
        "detail": f"Request was throttled. Expected available in {WAIT} seconds."
    }


def test_the_default_rates_leave_serving_generous_and_writes_stricter():
    assert django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {
        "serving": "120000/min",
        "read": "12000/min",
        "write": "1200/min",
        "admin": "120/min",
    }
    assert django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "accounts.throttling.ScopeRateThrottle"
    ]


def test_a_token_past_its_rate_gets_429_with_retry_after(rates, make_token_client):
    rates(read="3/min")
    shop = make_token_client("read")
    other_shop = make_token_client("read")

    answers = [shop.get("/api/v1/products/").status_code for _ in range(3)]
    refused = shop.get("/api/v1/products/")

    assert answers == [200, 200, 200]
    _assert_throttled(refused)
    # Per token: another token is counted on its own.
    assert other_shop.get("/api/v1/products/").status_code == 200


def test_each_scope_is_counted_on_its_own(rates, make_token_client):
    rates(read="1/min")
    shop = make_token_client("read")

    assert shop.get("/api/v1/products/").status_code == 200
    _assert_throttled(shop.get("/api/v1/customers/"))  # read, like the list above
    # serving is another scope: a shop that read its catalogue still gets recommendations
    assert shop.get("/api/v1/products/trending").status_code in (200, 503)


def test_writes_and_admin_writes_have_their_own_rates(rates, make_token_client, admin_client_api):
    rates(write="1/min", admin="1/min")
    ingest = make_token_client("ingest")
    batch = {"items": [{"product_id": "P1", "title": "Mug"}]}

    assert ingest.post("/api/v1/products/batch", batch, format="json").status_code == 200
    _assert_throttled(ingest.post("/api/v1/products/batch", batch, format="json"))
    token = {"name": "shop", "scopes": ["read"]}
    assert admin_client_api.post("/api/v1/tokens/", token, format="json").status_code == 201
    _assert_throttled(admin_client_api.post("/api/v1/tokens/", token, format="json"))
    # An admin's reads (the jobs page polls a job every second) are reads, not admin writes.
    assert admin_client_api.get("/api/v1/jobs/").status_code == 200


def test_signed_in_people_are_counted_per_person(rates, merchandiser_client, admin_client_api):
    rates(read="1/min")

    assert merchandiser_client.get("/api/v1/products/").status_code == 200
    _assert_throttled(merchandiser_client.get("/api/v1/products/"))
    assert admin_client_api.get("/api/v1/products/").status_code == 200


def test_a_scope_set_to_none_is_not_limited(rates, make_token_client):
    rates(read="none")
    shop = make_token_client("read")

    assert {shop.get("/api/v1/products/").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    ("path", "method", "scope"),
    [
        ("/api/v1/customers/c1/recommendations", "GET", "serving"),
        ("/api/v1/recommendations/session", "POST", "serving"),
        ("/api/v1/products/p1/similar", "GET", "serving"),
        ("/api/v1/products/p1/bought-together", "GET", "serving"),
        ("/api/v1/products/trending", "GET", "serving"),
        ("/api/v1/products/search", "GET", "serving"),
        ("/api/v1/products/", "GET", "read"),
        ("/api/v1/jobs/", "GET", "read"),
        ("/api/v1/products/batch", "POST", "write"),
        ("/api/v1/customers/c1/", "DELETE", "write"),
        ("/api/v1/rules/", "POST", "write"),
        ("/api/v1/jobs/reindex", "POST", "admin"),
        ("/api/v1/jobs/train", "POST", "admin"),
        ("/api/v1/tokens/", "POST", "admin"),
        ("/api/v1/tokens/", "GET", "read"),
        ("/api/v1/customers/c1/export", "GET", "read"),
        ("/api/v1/privacy/audit", "GET", "read"),
    ],
)
def test_every_endpoint_falls_in_the_scope_its_callers_need(path, method, scope):
    view = resolve(path).func.cls  # type: ignore[attr-defined]

    class Request:  # Only the method matters.
        pass

    request = Request()
    request.method = method  # type: ignore[attr-defined]
    assert throttle_scope(request, view) == scope  # type: ignore[arg-type]


def test_rates_are_parsed_or_refused_with_the_expected_form():
    assert parse_rate("120000/min") == (120000, 60)
    assert parse_rate("10/s") == (10, 1)
    assert parse_rate("5/hour") == (5, 3600)
    assert parse_rate("none") is None
    assert parse_rate("") is None
    with pytest.raises(ValueError, match="bad API rate 'ten/min'"):
        parse_rate("ten/min")
