"""Query parameters, validated by the endpoint's input serializer once per distinct query string.

A shop back end asks the read endpoints with the same few query strings all day (``?k=10``),
and DRF builds a serializer, deep-copies its fields and validates them anew on every request:
about 0.2 ms of the recommendations endpoint's CPU (docs/benchmarks.md, sixteenth session).
Each process remembers the validated values of the query strings it has seen, per serializer.
Only successful validations are remembered (a refusal is worked out, and answered, every time),
only short query strings (long ones carry id lists that rarely repeat), and at most
``MEMO_MAX`` of them. Input serializers of query strings must therefore not depend on anything
but the query string (no context, no callable defaults), as none does.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

MEMO_MAX = 1024
MEMO_QUERY_MAX = 256

_memo: dict[tuple[type[serializers.Serializer], str], dict[str, Any]] = {}


def query_input(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """``request``'s query parameters as ``serializer`` validates them (400 when it refuses).

    The caller gets its own dict (and its own lists): changing it changes no later answer."""
    query = request.META.get("QUERY_STRING", "")
    key = (serializer, query)
    found = _memo.get(key)
    if found is None:
        params = serializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        found = dict(params.validated_data)
        if len(query) <= MEMO_QUERY_MAX:
            if len(_memo) >= MEMO_MAX:
                _memo.clear()
            _memo[key] = found
    return {name: list(v) if isinstance(v, list) else v for name, v in found.items()}
