"""The fast CSV events parser gives exactly what parse_event gives: records and messages."""

from datetime import UTC, datetime

import pytest

from recommender.ingestion.records import EventRowParser, RowError, parse_event

TYPES = frozenset({"view", "click", "add_to_cart", "purchase", "search"})
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
COLUMNS = (
    "event_id", "customer_id", "product_id", "event_type", "timestamp", "quantity", "value",
    "session_id", "search_query", "colour", "",
)  # fmt: skip
GOOD = ["e1", "c1", "P1", "view", "2024-05-01T10:00:00Z", "1", "", "s1", "", "red", ""]

# (column, value) changes to the good row: clean ones take the fast path, the others must fall
# back to parse_event and still agree with it.
CHANGES = [
    {},
    {"event_id": ""},  # derived id
    {"event_id": " e1 "},
    {"event_id": "x" * 191},
    {"event_id": "x" * 192},
    {"customer_id": ""},
    {"customer_id": " c1"},
    {"customer_id": "c" * 129},
    {"product_id": ""},
    {"product_id": "P1 "},
    {"event_type": "like"},
    {"event_type": " view"},
    {"event_type": "search", "product_id": "", "search_query": "red mug"},
    {"event_type": "search", "product_id": ""},
    {"event_type": "purchase", "value": "3.5"},
    {"value": "3.555"},
    {"value": "-1"},
    {"value": "-0"},
    {"value": "1e12"},
    {"value": "NaN"},
    {"value": "abc"},
    {"value": " 2.50 "},
    {"value": "1_000"},
    {"quantity": ""},
    {"quantity": "0"},
    {"quantity": "2.0"},
    {"quantity": "2.5"},
    {"quantity": "007"},
    {"quantity": "2147483648"},
    {"quantity": "99999999999"},
    {"quantity": "٣"},
    {"quantity": " 3"},
    {"timestamp": ""},
    {"timestamp": "yesterday"},
    {"timestamp": "2024-05-01 10:00:00"},  # naive: UTC
    {"timestamp": "2024-05-01T12:00:00+02:00"},
    {"timestamp": " 2024-05-01T10:00:00Z"},
    {"timestamp": "2024-06-02T11:59:00Z"},  # within the tolerated clock skew
    {"timestamp": "2024-06-03T12:00:01Z"},  # in the future
    {"timestamp": "2024-05-01"},
    {"session_id": "s" * 129},
    {"session_id": "s1 "},
    {"search_query": "q" * 501},
    {"search_query": "free text"},
    {"customer_id": "", "timestamp": "nope", "quantity": "-2"},  # several errors at once
    # Ids outside the URL-safe alphabet, and refused text.
    {"customer_id": "c-1.a_b~c:d@e"},
    {"customer_id": "a/b"},
    {"product_id": "P 1"},
    {"product_id": ".."},
    {"customer_id": "kund\u00e9"},
    {"event_id": "e\x00"},
    {"session_id": "s\x1f"},
    {"search_query": "red\x7fmug"},
    {"search_query": "tab\tand\u00a0space"},
    # Moments that an offset moves out of years 1-9999 in UTC.
    {"timestamp": "0001-01-01T00:00:00+01:00"},
    {"timestamp": "9999-12-31T23:59:59-01:00"},
    # Rounds past the largest amount a column holds.
    {"value": "9999999999.995"},
    {"value": "9999999999.994"},
]


def _row(change: dict[str, str]) -> list[str]:
    values = list(GOOD)
    for name, value in change.items():
        values[COLUMNS.index(name)] = value
    return values


def _slow(values: list[str]):
    raw = {name: value for name, value in zip(COLUMNS, values, strict=True) if name}
    try:
        return parse_event(raw, event_types=TYPES, now=NOW, allowed=None, typed=False)
    except RowError as exc:
        return exc.errors


def _fast(parser: EventRowParser, values: list[str]):
    try:
        return parser(values)
    except RowError as exc:
        return exc.errors


@pytest.mark.parametrize("change", CHANGES, ids=[repr(c) for c in CHANGES])
def test_fast_parser_agrees_with_parse_event(change):
    parser = EventRowParser(COLUMNS, event_types=TYPES, now=NOW)
    values = _row(change)
    assert _fast(parser, values) == _slow(values)


def test_a_file_without_a_product_column_still_parses_searches():
    # given: no product_id column at all (every row goes through parse_event)
    columns = ("customer_id", "event_type", "timestamp", "search_query")
    parser = EventRowParser(columns, event_types=TYPES, now=NOW)
    # when
    record = parser(["c1", "search", "2024-05-01T10:00:00Z", "red mug"])
    # then
    assert (record.customer_id, record.product_id, record.search_query) == ("c1", None, "red mug")
    assert record.event_id.startswith("auto-")
