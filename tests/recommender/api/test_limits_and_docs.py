import json

import pytest

pytestmark = pytest.mark.django_db


def test_a_body_over_the_size_limit_is_refused_with_413(ingest_client, settings):
    settings.RECSITE_API_MAX_BODY_BYTES = 1000
    body = json.dumps({"items": [{"product_id": f"P{i}", "title": "x" * 50} for i in range(30)]})

    response = ingest_client.post("/api/v1/products/batch", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"Request body is {len(body):,} bytes; the limit is 1,000 "
        "(RECSITE_API_MAX_BODY_BYTES). Send smaller batches."
    }


def test_api_docs_are_served_without_any_cdn(admin_client_api):
    html = admin_client_api.get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
