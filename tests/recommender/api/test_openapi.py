"""The OpenAPI schema: valid, complete, behind login, and in step with the row parser."""

import pytest
import yaml
from django.core.management import call_command

from recommender.api import serializers
from recommender.ingestion import records, values
from social import records as social_records
from social.api import serializers as social_serializers


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
        # The privacy app's routes.
        ("/api/v1/customers/{customer_id}/export", "get"): "customers_export",
        ("/api/v1/privacy/audit", "get"): "privacy_audit_list",
        ("/api/v1/privacy/forget-requests", "get"): "privacy_forget_requests_list",
        ("/api/v1/privacy/reports", "get"): "privacy_reports_list",
        ("/api/v1/privacy/reports", "post"): "privacy_reports_create",
        ("/api/v1/privacy/reports/{report_id}", "get"): "privacy_reports_retrieve",
        # The social app's routes.
        ("/api/v1/relationships/batch", "post"): "relationships_batch",
        # The experiments app's routes.
        ("/api/v1/experiments/", "get"): "experiments_list",
        ("/api/v1/experiments/", "post"): "experiments_create",
        ("/api/v1/experiments/{experiment_id}/", "get"): "experiments_retrieve",
        ("/api/v1/experiments/{experiment_id}/", "patch"): "experiments_partial_update",
        ("/api/v1/experiments/{experiment_id}/start", "post"): "experiments_start",
        ("/api/v1/experiments/{experiment_id}/stop", "post"): "experiments_stop",
        ("/api/v1/experiments/{experiment_id}/copy", "post"): "experiments_copy",
        ("/api/v1/experiments/{experiment_id}/promote", "post"): "experiments_promote",
        ("/api/v1/experiments/{experiment_id}/results", "get"): "experiments_results",
        ("/api/v1/experiments/{experiment_id}/refresh", "post"): "experiments_refresh",
        ("/api/v1/experiments/{experiment_id}/replay", "post"): "experiments_replay",
    }


@pytest.mark.parametrize(
    ("component", "fields", "required"),
    [
        ("ProductItemRequest", records.PRODUCT_FIELDS, records.REQUIRED_PRODUCT_COLUMNS),
        ("CustomerItemRequest", records.CUSTOMER_FIELDS, records.REQUIRED_CUSTOMER_COLUMNS),
        ("EventItemRequest", records.EVENT_FIELDS, records.REQUIRED_EVENT_COLUMNS),
        (
            "RelationshipItemRequest",
            social_records.RELATIONSHIP_FIELDS,
            social_records.REQUIRED_RELATIONSHIP_COLUMNS,
        ),
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
        (social_serializers.RelationshipItemSerializer, social_records.RELATIONSHIP_FIELDS),
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


# What every operation shares (recsite/api/schema.py) -----------------------------------


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, spec in methods.items():
            yield path, method, spec


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_every_operation_documents_the_refusals_it_can_answer(schema):
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}}
    for path, method, spec in _operations(schema):
        expected = {"400", "401", "403", "429"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in spec:
            expected |= {"413", "415"}
        assert expected <= set(spec["responses"]), (method, path)
        for code in ("400", "401", "403", "429"):
            assert spec["responses"][code]["content"] == error, (method, path, code)


def test_every_answer_is_json(schema):
    for path, method, spec in _operations(schema):
        for code, response in spec["responses"].items():
            assert set(response.get("content", {})) <= {"application/json"}, (method, path, code)


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/v1/tags/", "PaginatedTagOutputList"),
        ("/api/v1/tags/suggestions", "PaginatedProductTagOutputList"),
        ("/api/v1/rules/", "PaginatedMerchandisingRuleOutputList"),
        ("/api/v1/tokens/", "PaginatedTokenOutputList"),
        ("/api/v1/products/", "PaginatedProductOutputList"),
        ("/api/v1/events/", "PaginatedEventOutputList"),
        ("/api/v1/privacy/audit", "PaginatedAuditEntryOutputList"),
        ("/api/v1/privacy/forget-requests", "PaginatedForgetRequestOutputList"),
        ("/api/v1/privacy/reports", "PaginatedAggregateReleaseOutputList"),
    ],
)
def test_lists_are_documented_as_the_pages_they_answer(schema, path, component):
    spec = schema["paths"][path]["get"]
    body = spec["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{component}"}
    page = schema["components"]["schemas"][component]
    assert page["properties"]["results"]["type"] == "array"
    names = {p["name"] for p in spec["parameters"]}
    assert {"limit"} <= names
    assert ("cursor" in names) == (path == "/api/v1/events/")


def _strings(schema, node, where):
    node = _resolve(schema, node)
    if node.get("type") == "string" and "enum" not in node and "format" not in node:
        yield where, node
    for name, child in node.get("properties", {}).items():
        yield from _strings(schema, child, f"{where}.{name}")
    if "items" in node:
        yield from _strings(schema, node["items"], f"{where}[]")
    for branch in node.get("allOf", []) + node.get("oneOf", []):
        yield from _strings(schema, branch, where)


def test_every_request_text_declares_what_is_refused_in_it(schema):
    # Control characters and (for ids) the alphabet: the document must say what a 400 checks.
    for path, method, spec in _operations(schema):
        for parameter in spec.get("parameters", []):
            for where, node in _strings(schema, parameter["schema"], parameter["name"]):
                assert "pattern" in node, (method, path, where)
                if parameter["in"] == "query":
                    assert node["minLength"] >= 1, (method, path, where)
        body = spec.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            for where, node in _strings(schema, body["schema"], "body"):
                assert "pattern" in node, (method, path, where)


def _integers(schema, node, where):
    node = _resolve(schema, node)
    if node.get("type") == "integer":
        yield where, node
    for name, child in node.get("properties", {}).items():
        yield from _integers(schema, child, f"{where}.{name}")
    if "items" in node:
        yield from _integers(schema, node["items"], f"{where}[]")


def test_every_request_integer_is_bounded(schema):
    # An unbounded integer reached the database as an out-of-range value (a 500).
    for path, method, spec in _operations(schema):
        nodes = [
            found
            for parameter in spec.get("parameters", [])
            for found in _integers(schema, parameter["schema"], parameter["name"])
        ]
        body = spec.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            nodes += list(_integers(schema, body["schema"], "body"))
        for where, node in nodes:
            if where == "limit":
                assert node["minimum"] == 1, (method, path)  # Larger ones are capped.
                continue
            assert {"minimum", "maximum"} <= set(node), (method, path, where)


def test_merchant_id_path_parameters_declare_the_alphabet(schema):
    for path, method, spec in _operations(schema):
        for parameter in spec.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] in ("product_id", "customer_id"):
                assert parameter["schema"] == {
                    "type": "string",
                    "pattern": values.ID_PATTERN,
                    "maxLength": records.MAX_ID_LENGTH,
                }, (method, path)


@pytest.mark.parametrize(
    "component",
    [
        "ProductBatchInputRequest",
        "CustomerBatchInputRequest",
        "EventBatchInputRequest",
        "RelationshipBatchInputRequest",
    ],
)
def test_batches_declare_their_size_and_refuse_unknown_fields(schema, component):
    envelope = schema["components"]["schemas"][component]
    assert envelope["additionalProperties"] is False
    assert (envelope["properties"]["items"]["minItems"], envelope["properties"]["items"][
        "maxItems"]) == (1, 1000)  # fmt: skip
    item = _resolve(schema, envelope["properties"]["items"]["items"])
    assert item["additionalProperties"] is False


def test_operations_with_a_rule_the_document_cannot_state_document_their_422(schema):
    with_422 = {
        (path, method) for path, method, spec in _operations(schema) if "422" in spec["responses"]
    }
    assert with_422 == {
        ("/api/v1/products/batch", "post"),
        ("/api/v1/customers/batch", "post"),
        ("/api/v1/events/batch", "post"),
        ("/api/v1/relationships/batch", "post"),
        ("/api/v1/events/", "get"),
        ("/api/v1/recommendations/session", "post"),
        ("/api/v1/rules/", "post"),
        ("/api/v1/rules/{rule_id}/", "patch"),
        ("/api/v1/tags/", "post"),
        ("/api/v1/tags/suggestions", "get"),
        ("/api/v1/tags/suggestions/decide", "post"),
        ("/api/v1/tokens/", "post"),
        ("/api/v1/experiments/", "post"),
        ("/api/v1/experiments/{experiment_id}/", "patch"),
        ("/api/v1/experiments/{experiment_id}/copy", "post"),
        ("/api/v1/experiments/{experiment_id}/promote", "post"),
        ("/api/v1/experiments/{experiment_id}/replay", "post"),
        ("/api/v1/privacy/reports", "post"),
    }
