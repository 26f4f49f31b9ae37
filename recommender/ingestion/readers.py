"""Reading data files row by row: CSV or JSON Lines, plain or gzipped. Framework-free.

A reader yields ``(line_number, values)`` where ``line_number`` is the physical line of the file
on which the record starts (the CSV header is line 1), so every message about a row can point
at the line a person opens in an editor. ``values`` is a dict of raw values (strings for CSV,
native JSON values for JSON Lines), or a :class:`RowError` when the line itself cannot be read
(not valid UTF-8, not a JSON object, the wrong number of CSV values). File-level problems that
make every row meaningless (unreadable file, empty or duplicate header) raise
:class:`FileRefused` instead.

Compression is detected by the gzip magic bytes, not by the name, so ``events.csv`` that is
really gzipped still reads. ``bytes_read``/``total_bytes`` count bytes of the file on disk,
so a progress bar is accurate for gzipped files too.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from recommender.ingestion.records import FieldError, RowError

FileFormat = Literal["csv", "jsonl"]
FORMATS: tuple[FileFormat, ...] = ("csv", "jsonl")
GZIP_MAGIC = b"\x1f\x8b"
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
# Field name used for problems of the line as a whole rather than of one field.
ROW_FIELD = "row"
# csv's default limit (128 KiB) is below a long product description; 10 MiB still bounds a
# runaway quoted field in a broken file.
csv.field_size_limit(10 * 1024 * 1024)


class FileRefused(ValueError):
    """The whole file is refused before any row is used (or, for a file that turns out to be
    truncated or corrupt, at the line where reading stopped)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


def format_from_name(path: str | os.PathLike[str]) -> FileFormat:
    """``jsonl`` for ``*.jsonl``/``*.ndjson`` (optionally ``.gz``), ``csv`` for anything else."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    return "jsonl" if name.endswith(_JSONL_SUFFIXES) else "csv"


def _row_error(message: str) -> RowError:
    return RowError([FieldError(ROW_FIELD, message)])


def _encoding_error(exc: UnicodeDecodeError) -> RowError:
    bad = exc.object[exc.start : exc.start + 1].hex()
    return _row_error(
        f"not valid UTF-8 (byte 0x{bad} at position {exc.start + 1}); save the file as UTF-8"
    )


class RecordReader:
    """An open data file. Use as a context manager and iterate it once.

    ``columns`` is the CSV header (known as soon as the file is open, so a caller can refuse
    a file with a missing column before reading on); it is ``None`` for JSON Lines, where
    every object carries its own keys.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, file_format: FileFormat | None = None
    ) -> None:
        self.path = Path(path)
        if file_format is not None and file_format not in FORMATS:
            raise FileRefused(f"unknown format {file_format!r}; expected one of {list(FORMATS)}")
        self.format: FileFormat = file_format or format_from_name(self.path)
        try:
            self._raw: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 (closed by close())
            self.total_bytes = os.fstat(self._raw.fileno()).st_size
            self.compressed = self._raw.read(2) == GZIP_MAGIC
            self._raw.seek(0)
        except OSError as exc:
            raise FileRefused(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        self._stream: io.BufferedIOBase | IO[bytes] = (
            gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw
        )
        self._line = 0  # Physical lines consumed so far.
        self._record_start = 0  # First line handed to the CSV parser for the current record.
        self._pending: list[tuple[int, RowError]] = []
        self.columns: tuple[str, ...] | None = None
        self._csv: Iterator[list[str]] | None = None
        if self.format == "csv":
            self._csv = csv.reader(self._text_lines())
            self.columns = self._read_header()

    # Context manager -----------------------------------------------------------------------
    def __enter__(self) -> RecordReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._raw.close()

    # Progress ------------------------------------------------------------------------------
    @property
    def bytes_read(self) -> int:
        """Bytes of the file on disk consumed so far (compressed bytes for a gzipped file)."""
        if self._raw.closed:
            return self.total_bytes
        return min(self._raw.tell(), self.total_bytes)

    @property
    def fraction(self) -> float:
        return self.bytes_read / self.total_bytes if self.total_bytes else 1.0

    # Reading -------------------------------------------------------------------------------
    def _binary_lines(self) -> Iterator[bytes]:
        try:
            for data in self._stream:
                self._line += 1
                yield data
        except (OSError, EOFError, zlib.error) as exc:
            # gzip raises BadGzipFile (an OSError) or EOFError on a corrupt or truncated file.
            raise FileRefused(
                f"cannot read beyond this line, the file is truncated or corrupt ({exc})",
                line=self._line + 1,
            ) from exc

    def _text_lines(self) -> Iterator[str]:
        for data in self._binary_lines():
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                # The line is left out of the CSV stream and reported on its own.
                self._pending.append((self._line, _encoding_error(exc)))
                continue
            if self._line == 1 and text.startswith("\ufeff"):
                text = text[1:]  # Byte order mark written by spreadsheet programs.
            if not self._record_start:
                self._record_start = self._line
            yield text

    def _read_header(self) -> tuple[str, ...]:
        assert self._csv is not None
        header = next(self._csv, None)
        if self._pending:
            raise FileRefused("the header is not valid UTF-8; save the file as UTF-8", line=1)
        if header is None:
            raise FileRefused("the file is empty; expected a header line", line=1)
        if not any(name.strip() for name in header):
            raise FileRefused("expected a header line, found an empty line", line=1)
        if self._line != 1:
            raise FileRefused("a column name spans several lines", line=1)
        columns = tuple(name.strip() for name in header)
        seen: set[str] = set()
        for name in columns:
            if name and name in seen:
                raise FileRefused(f"duplicate column {name!r}", line=1)
            seen.add(name)
        return columns

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
        if self.format == "csv":
            return self._csv_rows()
        return self._jsonl_rows()

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
        assert self.columns is not None
        columns = self.columns
        blank_names = "" in columns
        for start, values in self.csv_value_rows():
            if isinstance(values, RowError):
                yield start, values
                continue
            row = dict(zip(columns, values, strict=True))
            if blank_names:
                row.pop("", None)  # Unnamed columns (trailing commas of a spreadsheet export).
            yield start, row

    def csv_value_rows(self) -> Iterator[tuple[int, list[str] | RowError]]:
        """The CSV records as lists of values in the order of ``columns`` (no dict per row, for
        the fast events parser); blank lines are skipped and a record with the wrong number of
        values is a :class:`RowError`, as in iteration."""
        assert self._csv is not None
        assert self.columns is not None
        width = len(self.columns)
        pending = self._pending
        while True:
            self._record_start = 0
            values = next(self._csv, None)
            start = self._record_start
            if pending:
                yield from pending
                pending.clear()
            if values is None:
                return
            if not values:
                continue  # A blank line.
            if len(values) != width:
                yield (
                    start,
                    _row_error(f"expected {width} values (one per column), found {len(values)}"),
                )
                continue
            yield start, values

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
        for data in self._binary_lines():
            if not data.strip():
                continue
            try:
                value = json.loads(data)
            except UnicodeDecodeError as exc:
                yield self._line, _encoding_error(exc)
                continue
            except json.JSONDecodeError as exc:
                yield self._line, _row_error(f"not valid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield self._line, _row_error(f"expected a JSON object, got {_json_type(value)}")
                continue
            yield self._line, value


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def open_records(
    path: str | os.PathLike[str], *, file_format: FileFormat | None = None
) -> RecordReader:
    """Open a data file for reading; see :class:`RecordReader`."""
    return RecordReader(path, file_format=file_format)


def record_keys(
    path: str | os.PathLike[str], *, file_format: FileFormat | None = None
) -> tuple[str, ...]:
    """The CSV header, or the keys of the first JSON object: enough to tell what a file holds."""
    with open_records(path, file_format=file_format) as reader:
        if reader.columns is not None:
            return reader.columns
        for _, values in reader:
            if isinstance(values, dict):
                return tuple(values)
    return ()


def missing_columns(columns: tuple[str, ...] | None, required: tuple[str, ...]) -> list[str]:
    """Required columns absent from a CSV header; always empty for JSON Lines (no header)."""
    if columns is None:
        return []
    return [name for name in required if name not in columns]
