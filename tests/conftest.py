"""Shared fixtures: people in each role, API clients with each token scope, and data files."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_token_create, user_create_with_role

# The real datasets the tests read: ../shared/data beside the checkout, or RECSITE_SHARED_DATA for
# a checkout elsewhere (never read by the product at run time).
SHARED_DATA = Path(
    os.environ.get("RECSITE_SHARED_DATA")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "data"
)
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Each test starts with no API requests counted (accounts/throttling.py): ids of tokens and
    people repeat across tests on SQLite, and the counters live in this process's cache."""
    cache.clear()


@pytest.fixture
def merchandiser(db):
    return user_create_with_role(
        username="merch", password="merch-pass-123", role=Role.MERCHANDISER
    )


@pytest.fixture
def admin_user(db):
    return user_create_with_role(username="boss", password="boss-pass-123", role=Role.ADMIN)


@pytest.fixture
def make_token_client(db) -> Callable[..., APIClient]:
    def make(*scopes: str) -> APIClient:
        _, raw = api_token_create(name="test-" + "-".join(scopes), scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def ingest_client(make_token_client) -> APIClient:
    return make_token_client("ingest")


@pytest.fixture
def read_client(make_token_client) -> APIClient:
    return make_token_client("read")


@pytest.fixture
def merchandiser_client(merchandiser) -> APIClient:
    client = APIClient()
    client.force_login(merchandiser)
    return client


@pytest.fixture
def admin_client_api(admin_user) -> APIClient:
    client = APIClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"shared datasets not found at {SHARED_DATA}; tests need ../shared/data beside the "
            "checkout, or RECSITE_SHARED_DATA naming the folder"
        )
    return SHARED_DATA


@pytest.fixture
def beat_run(django_capture_on_commit_callbacks) -> Callable[[Any], None]:
    """Run a beat task as beat would (eagerly, in the test settings), with what it sends to the
    workers once its transaction commits run too: a test's own transaction never commits."""

    def run(task: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            task.delay()

    return run
