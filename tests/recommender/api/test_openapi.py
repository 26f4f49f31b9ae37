"""The OpenAPI schema: valid, complete, behind login, and in step with the row parser."""

import pytest
import yaml
from django.core.management import call_command

from recommender.api import serializers
from recommender.ingestion import records


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("openapi") / "schema.yaml"
    # --fail-on-warn: an undocumented view or an unresolvable type fails the suite.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_schema_documents_every_v1_operation(schema):
    operations = {
        (path, method): spec["operationId"]
        for path, methods in schema["paths"].items()
        for method, spec in methods.items()
    }
    assert operations == {
        ("/api/v1/products/", "get"): "products_list",
        ("/api/v1/products/{product_id}/", "get"): "products_retrieve",
        ("/api/v1/products/{product_id}/", "delete"): "products_destroy",
        ("/api/v1/products/batch", "post"): "products_batch",
        ("/api/v1/products/search", "get"): "products_search",
        ("/api/v1/products/{product_id}/similar", "get"): "products_similar",
        ("/api/v1/jobs/reindex", "post"): "jobs_reindex",
        ("/api/v1/products/trending", "get"): "products_trending",
        ("/api/v1/products/{product_id}/bought-together", "get"): "products_bought_together",
        ("/api/v1/customers/{customer_id}/recommendations", "get"): "customers_recommendations",
        ("/api/v1/recommendations/session", "post"): "recommendations_session",
        ("/api/v1/jobs/train", "post"): "jobs_train",
        ("/api/v1/customers/", "get"): "customers_list",
        ("/api/v1/customers/{customer_id}/", "get"): "customers_retrieve",
        ("/api/v1/customers/{customer_id}/", "delete"): "customers_destroy",
        ("/api/v1/customers/batch", "post"): "customers_batch",
        ("/api/v1/events/", "get"): "events_list",
        ("/api/v1/events/batch", "post"): "events_batch",
        ("/api/v1/jobs/", "get"): "jobs_list",
        ("/api/v1/jobs/{id}/", "get"): "jobs_retrieve",
        ("/api/v1/tokens/", "get"): "tokens_list",
        ("/api/v1/tokens/", "post"): "tokens_create",
        ("/api/v1/tokens/{token_id}/", "delete"): "tokens_revoke",
        ("/api/v1/rules/", "get"): "rules_list",
        ("/api/v1/rules/", "post"): "rules_create",
        ("/api/v1/rules/{rule_id}/", "get"): "rules_retrieve",
        ("/api/v1/rules/{rule_id}/", "patch"): "rules_partial_update",
        ("/api/v1/rules/{rule_id}/", "delete"): "rules_delete",
        ("/api/v1/jobs/evaluate", "post"): "jobs_evaluate",
        # The tagging app's routes.
        ("/api/v1/tags/", "get"): "tags_list",
        ("/api/v1/tags/", "post"): "tags_create",
        ("/api/v1/tags/suggestions", "get"): "tags_suggestions",
        ("/api/v1/tags/suggestions/decide", "post"): "tags_suggestions_decide",
        ("/api/v1/products/{product_id}/tags", "get"): "products_tags",
        ("/api/v1/customers/{customer_id}/interests", "get"): "customers_interests",
        ("/api/v1/jobs/tag", "post"): "jobs_tag",
        # The churn app's routes.
        ("/api/v1/customers/at-risk", "get"): "customers_at_risk",
        ("/api/v1/customers/{customer_id}/churn", "get"): "customers_churn",
        ("/api/v1/customers/{customer_id}/win-back", "get"): "customers_win_back",
        ("/api/v1/jobs/churn", "post"): "jobs_churn",
    }


@pytest.mark.parametrize(
    ("component", "fields", "required"),
    [
        ("ProductItemRequest", records.PRODUCT_FIELDS, records.REQUIRED_PRODUCT_COLUMNS),
        ("CustomerItemRequest", records.CUSTOMER_FIELDS, records.REQUIRED_CUSTOMER_COLUMNS),
        ("EventItemRequest", records.EVENT_FIELDS, records.REQUIRED_EVENT_COLUMNS),
    ],
)
def test_documented_batch_items_match_the_parser(schema, component, fields, required):
    documented = schema["components"]["schemas"][component]
    assert tuple(documented["properties"]) == fields
    assert sorted(documented["required"]) == sorted(required)


@pytest.mark.parametrize(
    ("serializer", "fields"),
    [
        (serializers.ProductItemSerializer, records.PRODUCT_FIELDS),
        (serializers.CustomerItemSerializer, records.CUSTOMER_FIELDS),
        (serializers.EventItemSerializer, records.EVENT_FIELDS),
    ],
)
def test_item_serializers_declare_the_parser_fields(serializer, fields):
    assert tuple(serializer().fields) == fields


def test_batch_requests_reference_the_item_shapes(schema):
    paths = schema["paths"]
    for path, component in [
        ("/api/v1/products/batch", "ProductBatchInputRequest"),
        ("/api/v1/customers/batch", "CustomerBatchInputRequest"),
        ("/api/v1/events/batch", "EventBatchInputRequest"),
    ]:
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{component}"}
        assert paths[path]["post"]["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOutput"
        }


def test_schema_declares_bearer_tokens_and_sessions(schema):
    assert schema["components"]["securitySchemes"] == {
        "apiToken": {"type": "http", "scheme": "bearer"},
        "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
    }


@pytest.mark.django_db
def test_schema_and_docs_need_authentication(anon_client, read_client):
    assert anon_client.get("/api/schema/").status_code == 401
    assert anon_client.get("/api/docs/").status_code == 401
    served = read_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert served.status_code == 200
    assert "/api/v1/events/batch" in served.json()["paths"]
