"""The OpenAPI document, generated from the serializers and fields that validate requests, with
what every operation shares stated once:

* the refusals every operation can answer, in the house error format
  (:mod:`recsite.api.errors`): 400 (the request does not match this document, including
  any query parameter, see :mod:`recsite.api.middleware`), 401, 403, 429, 404 where the
  path names a record, 413 and 415 where there is a request body;
* the ``pattern`` of every request text field (:mod:`recsite.api.fields`), and on every
  string query parameter a ``minLength`` of 1 and the text pattern, as the query guard
  enforces;
* the merchant-id alphabet on ``product_id`` and ``customer_id`` path parameters;
* ``additionalProperties: false`` on request objects that refuse unknown fields
  (``openapi_closed``).
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from recommender.ingestion import records, values
from recsite.api import serializers as s
from recsite.api.lookups import MAX_PK

_ERRORS = {
    "400": "The request does not match this document (a query parameter or a body field, "
    "named in 'errors').",
    "401": "No valid credentials: send 'Authorization: Bearer <token>' or sign in.",
    "403": "Signed in, but without the scope (or role) this operation needs.",
    "404": "No record with this id.",
    "413": "The request body is larger than RECSITE_API_MAX_BODY_BYTES.",
    "415": "The request body is not JSON (send 'Content-Type: application/json').",
    "429": "Too many requests: wait for the seconds in 'Retry-After', then retry.",
}
_MERCHANT_IDS = {"product_id", "customer_id"}


def _plain_string(schema: dict[str, Any]) -> bool:
    return (
        schema.get("type") == "string"
        and "enum" not in schema
        and "format" not in schema
        and "$ref" not in schema
    )


class RecsiteAutoSchema(AutoSchema):
    def _insert_field_validators(self, field: Any, schema: Any) -> None:
        super()._insert_field_validators(field, schema)
        # After DRF's own constraints: the pattern of a blank-allowed field admits "" already,
        # so it needs no "empty string" alternative.
        pattern = getattr(field, "openapi_pattern", None)
        if pattern and isinstance(schema, dict) and _plain_string(schema):
            schema["pattern"] = pattern

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> Any:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and getattr(serializer, "openapi_closed", False):
            schema["additionalProperties"] = False
        return schema

    def _get_parameters(self) -> list[Any]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter["in"] == "path" and parameter["name"] in _MERCHANT_IDS:
                schema.update(
                    type="string", pattern=values.ID_PATTERN, maxLength=records.MAX_ID_LENGTH
                )
            elif parameter["in"] == "path" and schema.get("type") == "integer":
                schema.update(minimum=1, maximum=MAX_PK)  # Larger ones name no record (404).
            elif parameter["in"] == "query" and _plain_string(schema):
                schema["minLength"] = max(1, schema.get("minLength", 0))
                schema.setdefault("pattern", values.TEXT_PATTERN)
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes += ["413", "415"]
        codes.append("429")
        for code in codes:
            if code not in responses:
                error = OpenApiResponse(s.ErrorOutputSerializer, description=_ERRORS[code])
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return dict(sorted(responses.items()))


def refused_by_rule(description: str) -> OpenApiResponse:
    """A 422 of an operation: the request matches this document, but the rule described (one
    the document cannot state) refuses it. Same body as a 400."""
    return OpenApiResponse(s.ErrorOutputSerializer, description=description)
