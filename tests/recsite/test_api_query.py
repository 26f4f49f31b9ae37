"""Query parameters validated once per distinct query string (recsite/api/query.py)."""

from typing import Any

import pytest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from recsite.api import query
from recsite.api.fields import IdListField, WholeNumberField
from recsite.api.query import query_input

factory = APIRequestFactory()


class CountingInput(serializers.Serializer):
    """An input serializer that counts its validations."""

    validations = 0
    k = WholeNumberField(min_value=1, max_value=100, default=10)
    exclude = IdListField(required=False, max_ids=200, max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        type(self).validations += 1
        return attrs


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch):
    monkeypatch.setattr(query, "_memo", {})
    CountingInput.validations = 0


def _get(path: str) -> Request:
    return Request(factory.get(path))


def test_a_query_string_seen_before_is_not_validated_again():
    assert query_input(CountingInput, _get("/x?k=3&exclude=a,b")) == {"k": 3, "exclude": ["a", "b"]}
    assert query_input(CountingInput, _get("/x?k=3&exclude=a,b")) == {"k": 3, "exclude": ["a", "b"]}
    assert CountingInput.validations == 1
    assert query_input(CountingInput, _get("/x")) == {"k": 10}
    assert CountingInput.validations == 2


def test_changing_an_answer_changes_no_later_answer():
    first = query_input(CountingInput, _get("/x?exclude=a"))
    first["exclude"].append("b")
    first["k"] = 99
    assert query_input(CountingInput, _get("/x?exclude=a")) == {"k": 10, "exclude": ["a"]}


def test_a_refusal_is_never_remembered():
    for _ in range(2):
        with pytest.raises(serializers.ValidationError) as refused:
            query_input(CountingInput, _get("/x?k=0"))
        assert refused.value.detail == {
            "k": [serializers.ErrorDetail("Ensure this value is greater than or equal to 1.",
                                          code="min_value")]
        }  # fmt: skip
    assert query._memo == {}


def test_long_query_strings_are_validated_every_time():
    long = "/x?exclude=" + ",".join(f"p{i}" for i in range(80))
    assert len(long.split("?", 1)[1]) > query.MEMO_QUERY_MAX
    query_input(CountingInput, _get(long))
    query_input(CountingInput, _get(long))
    assert CountingInput.validations == 2
    assert query._memo == {}


def test_the_memo_is_emptied_when_full(monkeypatch):
    monkeypatch.setattr(query, "MEMO_MAX", 2)
    for k in (1, 2, 3):
        query_input(CountingInput, _get(f"/x?k={k}"))
    assert list(query._memo) == [(CountingInput, "k=3")]
