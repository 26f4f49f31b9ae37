"""File readers: formats, gzip by magic bytes, physical line numbers, row and file errors."""

import gzip
import json

import pytest

from recommender.ingestion.readers import (
    FileRefused,
    format_from_name,
    open_records,
    record_keys,
)
from recommender.ingestion.records import FieldError, RowError


def _rows(path, **kwargs):
    """(line, values) with RowErrors turned into comparable (field, message) lists."""
    with open_records(path, **kwargs) as reader:
        return [
            (line, [(e.field, e.message) for e in raw.errors] if isinstance(raw, RowError) else raw)
            for line, raw in reader
        ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("events.csv", "csv"),
        ("events.csv.gz", "csv"),
        ("EVENTS.JSONL", "jsonl"),
        ("events.jsonl.gz", "jsonl"),
        ("events.ndjson", "jsonl"),
        ("events.ndjson.GZ", "jsonl"),
        ("events.txt", "csv"),
    ],
)
def test_format_from_name_strips_gz_and_defaults_to_csv(name, expected):
    assert format_from_name(name) == expected


def test_csv_rows_carry_the_physical_line_where_each_record_starts(tmp_path):
    # given: a quoted value spanning two lines, and a blank line
    path = tmp_path / "p.csv"
    path.write_text('product_id,title\nA,"Two\nlines"\n\nB,Plain\n', encoding="utf-8")
    # when
    with open_records(path) as reader:
        columns = reader.columns
        rows = list(reader)
    # then
    assert columns == ("product_id", "title")
    assert rows == [
        (2, {"product_id": "A", "title": "Two\nlines"}),
        (5, {"product_id": "B", "title": "Plain"}),
    ]


def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path):
    # given: gzipped content under a plain .csv name, and the same under .csv.gz
    content = b"product_id,title\nA,Alpha\n"
    disguised = tmp_path / "products.csv"
    disguised.write_bytes(gzip.compress(content))
    named = tmp_path / "products.csv.gz"
    named.write_bytes(gzip.compress(content))
    # when / then
    for path in (disguised, named):
        with open_records(path) as reader:
            assert reader.compressed is True
            assert list(reader) == [(2, {"product_id": "A", "title": "Alpha"})]


def test_header_is_stripped_of_bom_and_spaces_and_unnamed_columns_are_dropped(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeffproduct_id , title,\nA,Alpha,\n".encode())
    with open_records(path) as reader:
        assert reader.columns == ("product_id", "title", "")
        assert list(reader) == [(2, {"product_id": "A", "title": "Alpha"})]


def test_a_row_with_the_wrong_number_of_values_is_a_row_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("product_id,title\nA,Alpha,extra\nB\nC,Gamma\n", encoding="utf-8")
    assert _rows(path) == [
        (2, [("row", "expected 2 values (one per column), found 3")]),
        (3, [("row", "expected 2 values (one per column), found 1")]),
        (4, {"product_id": "C", "title": "Gamma"}),
    ]


def test_a_line_that_is_not_utf8_is_a_row_error_and_later_lines_keep_their_numbers(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"product_id,title\nA,Alpha\nB,Caf\xe9\nC,Gamma\n")
    assert _rows(path) == [
        (2, {"product_id": "A", "title": "Alpha"}),
        (3, [("row", "not valid UTF-8 (byte 0xe9 at position 6); save the file as UTF-8")]),
        (4, {"product_id": "C", "title": "Gamma"}),
    ]


def test_jsonl_yields_objects_and_reports_lines_that_are_not_objects(tmp_path):
    # given
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"event_id": "e1", "quantity": 2}),
        "",
        "[1, 2]",
        "{broken",
        json.dumps("text"),
        json.dumps({"event_id": "e2"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # when
    with open_records(path) as reader:
        columns = reader.columns
        rows = [(line, raw.errors if isinstance(raw, RowError) else raw) for line, raw in reader]
    # then
    assert columns is None
    assert rows == [
        (1, {"event_id": "e1", "quantity": 2}),
        (3, [FieldError("row", "expected a JSON object, got an array")]),
        (
            4,
            [
                FieldError(
                    "row",
                    "not valid JSON: Expecting property name enclosed in double quotes (column 2)",
                )
            ],
        ),
        (5, [FieldError("row", "expected a JSON object, got a string")]),
        (6, {"event_id": "e2"}),
    ]


def test_explicit_format_overrides_the_name(tmp_path):
    path = tmp_path / "events.txt"
    path.write_text('{"event_id": "e1"}\n', encoding="utf-8")
    assert _rows(path, file_format="jsonl") == [(1, {"event_id": "e1"})]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "line 1: the file is empty; expected a header line"),
        (b"\n", "line 1: expected a header line, found an empty line"),
        (b"a,b,a\n1,2,3\n", "line 1: duplicate column 'a'"),
        (b"a,\xff\n", "line 1: the header is not valid UTF-8; save the file as UTF-8"),
    ],
)
def test_a_bad_header_refuses_the_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(FileRefused) as caught:
        open_records(path)
    assert str(caught.value) == message
    assert caught.value.line == 1


def test_a_missing_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileRefused) as caught:
        open_records(path)
    assert str(caught.value) == f"cannot read {path}: No such file or directory"


def test_an_unknown_explicit_format_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("a\n", encoding="utf-8")
    with pytest.raises(
        FileRefused, match=r"unknown format 'xml'; expected one of \['csv', 'jsonl'\]"
    ):
        open_records(path, file_format="xml")  # type: ignore[arg-type]


def test_a_truncated_gzip_is_refused_at_the_line_where_reading_stopped(tmp_path):
    # given: the first half of a gzipped file of 20,000 lines
    content = "product_id,title\n" + "".join(f"P{n},Title {n}\n" for n in range(20_000))
    compressed = gzip.compress(content.encode())
    path = tmp_path / "p.csv.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    # when
    seen: list[int] = []
    with open_records(path) as reader, pytest.raises(FileRefused) as caught:
        seen.extend(line for line, _ in reader)
    # then: every whole line before the cut was read, and the message names the next one
    assert seen == list(range(2, len(seen) + 2))
    assert caught.value.line == len(seen) + 2
    assert "the file is truncated or corrupt" in str(caught.value)


def test_progress_counts_bytes_of_the_compressed_file(tmp_path):
    # given: a gzipped file of 200,000 similar lines, large enough to be read in many blocks
    content = "product_id,title\n" + "".join(
        f"P{n},Title number {n * 7919 % 1_000_003}\n" for n in range(200_000)
    )
    path = tmp_path / "p.csv.gz"
    path.write_bytes(gzip.compress(content.encode()))
    # when
    fractions = {}
    with open_records(path) as reader:
        assert reader.total_bytes == path.stat().st_size
        for line, _ in reader:
            if line % 40_000 == 0:
                fractions[line] = reader.fraction
        at_end = reader.fraction
    # then: the fraction of compressed bytes read tracks the share of lines read
    assert list(fractions) == [40_000, 80_000, 120_000, 160_000, 200_000]
    for line, fraction in fractions.items():
        assert abs(fraction - line / 200_000) < 0.1, (line, fraction)
    assert at_end == 1.0


def test_record_keys_reads_the_header_or_the_first_object(tmp_path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("event_id,event_type\n", encoding="utf-8")
    jsonl_path = tmp_path / "a.jsonl"
    jsonl_path.write_text('not json\n{"title": "x", "product_id": "p"}\n', encoding="utf-8")
    assert record_keys(csv_path) == ("event_id", "event_type")
    assert record_keys(jsonl_path) == ("title", "product_id")
