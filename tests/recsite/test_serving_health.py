"""GET /health/serving: which builds the answering process serves, loading nothing."""

import os

import pytest

from recommender.services.index import serving_index
from recommender.services.recommendations import serving_engine
from tests.recommender.shop import fresh_serving, shop

__all__ = ["fresh_serving", "shop"]


@pytest.mark.django_db
def test_serving_health_is_anonymous_and_names_the_builds_this_process_serves(shop, anon_client):
    index_build = serving_index().build_id
    engine_build = serving_engine().build_id

    response = anon_client.get("/health/serving")

    assert response.status_code == 200
    assert response.json() == {
        "pid": os.getpid(),
        "mode": "own",
        "builds": {
            "engine": {"id": engine_build, "loaded_by": "self"},
            "index": {"id": index_build, "loaded_by": "self"},
        },
        "pending": {},
    }
