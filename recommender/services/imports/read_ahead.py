"""Reading ahead of the writes: rows parsed a chunk at a time, in a worker thread, while the
caller's connection writes the previous chunk.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from django.db import connections

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
    disappears behind the writes. The worker never touches the database: the writes stay on
    the caller's connection and inside its transaction (or on :func:`_write_in_parallel`'s).
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


R = TypeVar("R")


# Seconds a thread may hold the GIL while another waits for it, while writers run (Python's
# default is 0.005). A writer needs the GIL for a moment after each round trip to the database;
# with the default it waited behind the parsing thread, and the import ran 10% slower.
_WRITERS_SWITCH_INTERVAL = 0.0005


@contextlib.contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """``sys.setswitchinterval(seconds)`` for the block (process-wide), restored after it."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _write_in_parallel(
    items: Iterator[T],
    write: Callable[[T], R],
    done: Callable[[T, R], None],
    *,
    writers: int,
    keys: Callable[[T], AbstractSet[object]],
) -> None:
    """``write`` each of ``items`` in one of ``writers`` threads, each on its own database
    connection, and call ``done(item, result)`` in the calling thread in the items' order.

    An events import is bound by the database server, and one connection is one server process:
    one core, however many the server has. Two connections inserting different chunks keep two
    server processes busy (docs/benchmarks.md), so ``write`` must be a complete unit on its own
    connection (its own transaction). Writes of items that share none of their ``keys`` may
    commit in any order; an item sharing a key with a write in flight waits for it, so what the
    first of them writes (the first occurrence of an event id) is what a single writer would
    have written. ``done`` sees the results in order, so whatever it reports is what a single
    writer would report. The first exception of a ``write`` stops the feeding, lets the writes
    in flight finish, and is raised here; each thread closes its connection.
    """
    with _switch_interval(_WRITERS_SWITCH_INTERVAL):
        pool = _Writers(write, done, writers=writers)
        try:
            for item in items:
                if pool.failures:
                    break
                pool.send(item, keys(item))
        finally:
            pool.close()
    if pool.failures:
        raise pool.failures[0]


class _Writers(Generic[T, R]):
    """The threads of :func:`_write_in_parallel` and the bookkeeping of their items."""

    def __init__(self, write: Callable[[T], R], done: Callable[[T, R], None], *, writers: int):
        self.write, self.done = write, done
        self.work: queue.Queue[object] = queue.Queue(maxsize=writers)
        self.finished: queue.Queue[tuple[int, object, BaseException | None]] = queue.Queue()
        self.waiting: dict[int, T] = {}  # Sent, not yet passed to ``done``.
        self.flying: dict[int, AbstractSet[object]] = {}  # Sent, not yet written: their keys.
        self.results: dict[int, object] = {}
        self.failures: list[BaseException] = []
        self.sent = self.next_done = 0
        self.threads = [
            threading.Thread(target=self._run, name=f"recsite-import-writer-{n}", daemon=True)
            for n in range(writers)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        try:
            while (task := self.work.get()) is not _DONE:
                index, item = cast(tuple[int, T], task)
                try:
                    self.finished.put((index, self.write(item), None))
                except BaseException as exc:  # noqa: BLE001 (re-raised in the calling thread)
                    self.finished.put((index, None, exc))
        finally:
            connections.close_all()  # This thread's own connections.

    def send(self, item: T, keys: AbstractSet[object]) -> None:
        while any(not keys.isdisjoint(other) for other in self.flying.values()):
            self._receive(block=True)  # A write in flight has one of its keys: after it.
        self.waiting[self.sent] = item
        self.flying[self.sent] = keys
        self.work.put((self.sent, item))
        self.sent += 1
        while self._receive(block=False):
            pass

    def _receive(self, *, block: bool) -> bool:
        """Take one finished write (waiting for one if ``block``); False when there was none."""
        try:
            index, result, exc = self.finished.get(block=block)
        except queue.Empty:
            return False
        del self.flying[index]
        if exc is not None:
            self.failures.append(exc)
        self.results[index] = result
        while not self.failures and self.next_done in self.results:
            result = self.results.pop(self.next_done)
            self.done(self.waiting.pop(self.next_done), cast(R, result))
            self.next_done += 1
        return True

    def close(self) -> None:
        """Let the writes in flight finish, stop the threads, and report what they wrote."""
        for _ in self.threads:
            self.work.put(_DONE)
        for thread in self.threads:
            thread.join()
        while self._receive(block=False):
            pass
