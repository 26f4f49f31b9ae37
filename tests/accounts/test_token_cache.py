"""The per-process cache of verified API tokens (RECSITE_TOKEN_CACHE_SECONDS)."""

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.selectors import api_token_cache_forget
from accounts.services import api_token_create


@pytest.fixture
def cached_tokens(db, settings):
    settings.RECSITE_TOKEN_CACHE_SECONDS = 60.0
    api_token_cache_forget()
    yield
    api_token_cache_forget()


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_verified_token_is_not_read_again_within_the_cache_time(
    cached_tokens, django_assert_num_queries
):
    # given
    _, raw = api_token_create(name="shop", scopes=["read"])
    client = _client(raw)
    assert client.get("/api/v1/products/").status_code == 200
    # when: the second request only counts the (no) products and reads nothing of the token
    with django_assert_num_queries(1):
        response = client.get("/api/v1/products/")
    # then
    assert response.status_code == 200


def test_revoking_through_the_api_refuses_the_token_at_once_despite_the_cache(
    cached_tokens, admin_client_api
):
    token, raw = api_token_create(name="shop", scopes=["read"])
    client = _client(raw)
    assert client.get("/api/v1/products/").status_code == 200

    admin_client_api.delete(f"/api/v1/tokens/{token.pk}/")

    assert client.get("/api/v1/products/").status_code == 401


def test_a_token_revoked_elsewhere_is_trusted_until_the_cache_time_passes(cached_tokens, settings):
    # given: another process revoked it (a plain UPDATE: this process's cache is not told)
    token, raw = api_token_create(name="shop", scopes=["read"])
    client = _client(raw)
    assert client.get("/api/v1/products/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get("/api/v1/products/").status_code == 200
    # when the cache time is over
    settings.RECSITE_TOKEN_CACHE_SECONDS = 1e-9
    # then
    assert client.get("/api/v1/products/").status_code == 401
