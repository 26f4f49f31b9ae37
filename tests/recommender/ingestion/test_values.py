"""The one definition of text, merchant ids and timestamps (recommender.ingestion.values), and
its OpenAPI patterns, which must accept exactly what the Python checks accept."""

import re
from datetime import UTC, datetime

import pytest

from recommender.ingestion import values


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Mug", None),
        ("tab\tline\nreturn\r", None),
        ("non-breaking\u00a0space, ideographic\u3000space, emoji \U0001f600", None),
        ("", None),
        ("nul\x00", "contains a control character (U+0000)"),
        ("bell\x07", "contains a control character (U+0007)"),
        ("escape\x1b[0m", "contains a control character (U+001B)"),
        ("delete\x7f", "contains a control character (U+007F)"),
        ("c1\x85", "contains a control character (U+0085)"),
        ("lone \ud800 surrogate", "contains an unpaired UTF-16 surrogate (U+D800)"),
        ("low \udfff", "contains an unpaired UTF-16 surrogate (U+DFFF)"),
    ],
)
def test_text_problem(text, problem):
    assert values.text_problem(text) == problem


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("Mug", True),
        ("", True),
        ("a\tb\nc\rd", True),
        ("\u00a0", True),
        ("a\x00", False),
        ("a\x0b", False),
        ("a\x9f", False),
    ],
)
def test_the_documented_text_pattern_accepts_what_the_check_accepts(text, accepted):
    assert bool(re.fullmatch(values.TEXT_PATTERN, text)) is accepted
    assert (values.text_problem(text) is None) is accepted


@pytest.mark.parametrize(
    ("text", "accepted"),
    [("Mug", True), (" Mug ", True), ("", False), ("   ", False), ("\t\n\u3000", False)],
)
def test_the_nonblank_pattern_matches_str_strip(text, accepted):
    assert bool(re.fullmatch(values.NONBLANK_TEXT_PATTERN, text)) is accepted
    assert bool(text.strip()) is accepted


@pytest.mark.parametrize("merchant_id", ["P1", "85123A", "sku-1.2_3~4:5@6", "a", "0", "-a-", "..a"])
def test_ids_in_the_alphabet_are_accepted(merchant_id):
    assert values.id_problem(merchant_id) is None
    assert re.fullmatch(values.ID_PATTERN, merchant_id)


@pytest.mark.parametrize(
    "merchant_id",
    ["a/b", "a b", " a", "a?b", "a#b", "a%2Fb", "a,b", "a+b", "kundé", ".", "..", "-", "~.~"],
)
def test_ids_outside_the_alphabet_are_refused(merchant_id):
    assert values.id_problem(merchant_id) == (
        f"must use only ASCII letters, digits and - . _ ~ : @ (at least one letter or digit), "
        f"got {merchant_id!r}"
    )
    assert re.fullmatch(values.ID_PATTERN, merchant_id) is None


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01 10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # Naive: UTC.
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text, moment):
    assert values.parse_timestamp(text) == moment


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-00:01", "0001-01-01T00:59:59+01:00"]
)
def test_a_moment_an_offset_moves_out_of_years_1_to_9999_is_refused(text):
    with pytest.raises(values.TimestampError) as refused:
        values.parse_timestamp(text)
    assert str(refused.value) == f"outside years 1 to 9999 once moved to UTC: {text!r}"
    assert refused.value.out_of_range is True


def test_a_range_bound_out_of_years_1_to_9999_is_clamped():
    assert values.parse_timestamp("0001-01-01T00:00:00+01:00", clamp=True) == values.EARLIEST
    assert values.parse_timestamp("9999-12-31T23:59:59-01:00", clamp=True) == values.LATEST


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "", "2024-05-01T25:00"])
def test_parse_timestamp_refuses_what_is_not_iso_8601(text):
    with pytest.raises(values.TimestampError) as refused:
        values.parse_timestamp(text)
    assert str(refused.value) == f"not an ISO 8601 timestamp: {text!r}"
    assert refused.value.out_of_range is False


def test_json_text_problems_walk_keys_values_and_lists():
    value = {"ok": "fine", "colour": ["red", "bl\x00ue"], "a\ud800": {"deep": "\udc00"}}

    assert list(values.json_text_problems(value, "attributes")) == [
        ("attributes.colour[1]", "contains a control character (U+0000)"),
        ("attributes.a\ud800", "the key contains an unpaired UTF-16 surrogate (U+D800)"),
        ("attributes.a\ud800.deep", "contains an unpaired UTF-16 surrogate (U+DC00)"),
    ]
