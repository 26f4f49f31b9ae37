"""Reading ahead of the writes: rows parsed a chunk at a time, in a worker thread, while the
caller's connection writes the previous chunk.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from recommender.ingestion.readers import (
    RecordReader,
)
from recommender.ingestion.records import (
    FieldError,
    RowError,
)

from .reports import ImportReport

T = TypeVar("T")


@dataclass(slots=True)
class _Chunk(Generic[T]):
    """Parsed rows of one stretch of the file, with the rows that failed to parse."""

    records: list[T] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejected: list[tuple[int, Sequence[FieldError]]] = field(default_factory=list)
    rows: int = 0
    fraction: float = 0.0  # Of the file read once this chunk was complete.

    def merge_into(self, report: ImportReport, *, count_rows: bool = True) -> None:
        if count_rows:
            report.rows += self.rows
        for line, errors in self.rejected:
            report.reject(line, errors)


def _parsed_chunks(
    reader: RecordReader,
    parse: Callable[[int, Any], T | None],
    *,
    size: int,
    rows: Iterable[tuple[int, Any]] | None = None,
) -> Iterator[_Chunk[T]]:
    """Rows parsed ``size`` at a time. ``parse`` returns ``None`` for a row to leave out.

    ``rows`` defaults to the reader's rows; progress is always the reader's.
    """
    chunk: _Chunk[T] = _Chunk()
    for line, raw in reader if rows is None else rows:
        chunk.rows += 1
        if isinstance(raw, RowError):
            chunk.rejected.append((line, raw.errors))
        else:
            try:
                record = parse(line, raw)
            except RowError as exc:
                chunk.rejected.append((line, exc.errors))
            else:
                if record is not None:
                    chunk.records.append(record)
                    chunk.lines.append(line)
        if chunk.rows == size:
            chunk.fraction = reader.fraction
            yield chunk
            chunk = _Chunk()
    chunk.fraction = reader.fraction
    yield chunk


_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@contextlib.contextmanager
def _read_ahead(items: Iterator[T], *, depth: int = 2) -> Iterator[Iterator[T]]:
    """Produce ``items`` in a worker thread while the caller consumes them.

    Reading and parsing are pure Python; writing is mostly the database server's work, during
    which psycopg releases the GIL. So the next chunk is parsed while the server inserts the
    previous one, and the parsing time (about a quarter of an events import on PostgreSQL)
    disappears behind the writes. The worker never touches the database: every write stays on
    the caller's connection and inside its transaction.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the consuming thread)
            buffer.put(_Failed(exc))

    def consume() -> Iterator[T]:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]

    worker = threading.Thread(target=produce, name="recsite-import-reader", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        # The consumer may stop early (an error); unblock the worker and wait for it, so the
        # file is not closed under its feet.
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.05)
        worker.join()
