"""Bulk imports of data files: products, events, and the raw UCI Online Retail export.

Used by the ``import*`` management commands and by the import job, so nothing here prints:
progress goes to an optional callback (a fraction from 0 to 1) and the outcome is an
:class:`ImportReport`. The semantics are documented in ``docs/ingestion.md``; in short:

* a file-level problem (unreadable file, missing required column, truncated gzip) raises
  :class:`~recommender.ingestion.readers.FileRefused`; before any row is read nothing is written;
* every bad row is reported with its line, field and reason and counted as rejected;
* without ``strict`` the valid rows are written in chunks, each chunk in its own transaction;
  with ``strict`` the import runs in one transaction that is rolled back if any row is bad;
* re-running an import changes nothing (products: unchanged; events: duplicates by id).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recommender.ingestion import online_retail
from recommender.ingestion.readers import (
    FileFormat,
    FileRefused,
    RecordReader,
    missing_columns,
    open_records,
    record_keys,
)
from recommender.ingestion.records import (
    EVENT_FIELDS,
    PRODUCT_FIELDS,
    REQUIRED_EVENT_COLUMNS,
    REQUIRED_PRODUCT_COLUMNS,
    CustomerRecord,
    EventRecord,
    EventRowParser,
    FieldError,
    ProductRecord,
    RowError,
    parse_customer,
    parse_event,
    parse_product,
)
from recommender.ingestion.values import json_text_problems
from recommender.models import Customer, Event, Product
from recommender.services.ingestion import (
    CustomerIds,
    ProductsDeleted,
    UpsertCounts,
    copy_tails_prepare,
    customers_upsert,
    events_insert,
    events_unknown_products,
    product_pk_map,
    products_upsert,
)

Progress = Callable[[float], None]
T = TypeVar("T")
ImportKind = Literal["products", "events", "online_retail"]
IMPORT_KINDS: tuple[ImportKind, ...] = ("products", "events", "online_retail")

# Rows read between two writes (and two progress reports). Large enough for COPY to pay off,
# small enough that a chunk's transaction stays short and progress moves every second or so.
EVENT_CHUNK_SIZE = 20_000
PRODUCT_CHUNK_SIZE = 5_000
# Row errors kept in a report (every rejected row is still counted). Bounds the memory and the
# size of a job record when a whole file is wrong.
MAX_ERRORS_KEPT = 10_000
# Share of the progress bar taken by the first (reading) pass of the Online Retail import;
# the second pass writes the events and is the slower one.
_RETAIL_FIRST_PASS_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class ImportRowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(slots=True)
class EntityCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0

    def add_upsert(self, counts: UpsertCounts) -> None:
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged


@dataclass(slots=True)
class ImportReport:
    """What an import read, wrote, skipped and rejected. ``as_dict()`` is JSON-serialisable.

    Every row read is accounted for once: for products, ``rows`` = created + updated +
    unchanged + duplicates + rejected; for events, ``rows`` = created + duplicates + rejected;
    for the Online Retail export, ``rows`` = skipped (all reasons) + events created +
    duplicates + rejected. After a strict import that was rolled back, the write counts are 0.
    """

    kind: ImportKind
    path: str
    file_format: str
    strict: bool
    rows: int = 0  # Data rows read (CSV header and blank lines excluded).
    products: EntityCounts = field(default_factory=EntityCounts)
    customers: EntityCounts = field(default_factory=EntityCounts)
    events: EntityCounts = field(default_factory=EntityCounts)
    rejected: int = 0  # Rows refused, each with at least one entry in ``errors``.
    skipped: dict[str, int] = field(default_factory=dict)  # Rows left out by rule, by reason.
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[ImportRowError] = field(default_factory=list)
    errors_not_kept: int = 0  # Errors beyond MAX_ERRORS_KEPT, counted only.
    written: bool = True  # False when ``strict`` refused the file: nothing was written.
    seconds: float = 0.0

    @property
    def created(self) -> int:
        return self.products.created + self.customers.created + self.events.created

    def reject(self, line: int, errors: Sequence[FieldError]) -> None:
        self.rejected += 1
        for error in errors:
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(ImportRowError(line, error.field, error.message))
            else:
                self.errors_not_kept += 1

    def discard_writes(self) -> None:
        """Forget the write counts of a rolled-back import."""
        self.products = EntityCounts()
        self.customers = EntityCounts()
        self.events = EntityCounts()
        self.written = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines: what was created, updated, skipped and rejected."""
        lines = [
            f"{self.path}: {self.rows:,} rows read ({self.file_format}) in {self.seconds:.1f} s"
        ]
        if self.kind in ("products", "online_retail"):
            p = self.products
            repeated = f", {p.duplicates:,} repeated ids" if p.duplicates else ""
            lines.append(
                f"  products:  {p.created:,} created, {p.updated:,} updated, "
                f"{p.unchanged:,} unchanged{repeated}"
            )
        if self.kind == "online_retail":
            c = self.customers
            lines.append(
                f"  customers: {c.created:,} created, {c.updated:,} updated, "
                f"{c.unchanged:,} unchanged"
            )
        if self.kind in ("events", "online_retail"):
            e = self.events
            lines.append(f"  events:    {e.created:,} created, {e.duplicates:,} duplicates")
        if self.kind == "events":
            lines.append(f"  customers: {self.customers.created:,} created")
        if self.skipped:
            parts = ", ".join(f"{count:,} {reason}" for reason, count in self.skipped.items())
            lines.append(f"  skipped:   {parts}")
        lines.append(f"  rejected:  {self.rejected:,} rows")
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        if not self.written:
            lines.append("  nothing was written (strict mode and at least one row was rejected)")
        return "\n".join(lines)


def _refuse_missing(reader: RecordReader, required: Sequence[str]) -> None:
    missing = missing_columns(reader.columns, tuple(required))
    if missing:
        names = ", ".join(repr(name) for name in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise FileRefused(f"missing required {noun} {names}", line=1)


@contextlib.contextmanager
def _import_transaction(*, strict: bool) -> Iterator[None]:
    """Strict imports are one transaction; others rely on the per-chunk ones of the writes."""
    if strict:
        with transaction.atomic():
            yield
    else:
        yield


def _report_progress(progress: Progress | None, fraction: float) -> None:
    if progress is not None:
        progress(min(max(fraction, 0.0), 1.0))


def _new_report(kind: ImportKind, reader: RecordReader, strict: bool) -> ImportReport:
    return ImportReport(kind=kind, path=str(reader.path), file_format=reader.format, strict=strict)


# After a bulk load this large, PostgreSQL's planner statistics are stale enough to pick a full
# scan and sort of a heavy customer's events over the (customer, -occurred_at) index.
_ANALYZE_AFTER_ROWS = 10_000


def _refresh_planner_statistics(report: ImportReport) -> None:
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    if report.created < _ANALYZE_AFTER_ROWS:
        return
    tables = [model._meta.db_table for model in (Product, Customer, Event)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(tables))


def _finish(report: ImportReport, started: float, progress: Progress | None) -> ImportReport:
    # Bad rows are reported in file order, whatever phase found them.
    report.errors.sort(key=lambda error: error.line)
    _refresh_planner_statistics(report)
    report.seconds = round(time.perf_counter() - started, 3)
    _report_progress(progress, 1.0)
    return report


# Reading and parsing in chunks, ahead of the writes -----------------------------------------
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


# Products -------------------------------------------------------------------------------------
def _product_parser(reader: RecordReader) -> Callable[[int, dict[str, Any]], ProductRecord]:
    """Parse a product; keys that are not product fields go into its ``attributes``."""
    known = frozenset(PRODUCT_FIELDS)
    header_extras = [c for c in reader.columns or () if c not in known]

    def parse(line: int, raw: dict[str, Any]) -> ProductRecord:
        # JSON Lines values carry their JSON types; CSV values are text to convert.
        record = parse_product(raw, allowed=None, typed=reader.columns is None)
        extras = header_extras if reader.columns is not None else [k for k in raw if k not in known]
        conflicts = []
        for name in extras:
            value = raw[name]
            if value is None or value == "":
                continue  # An empty cell is an absent attribute.
            if name in record.attributes:
                conflicts.append(FieldError(name, "also given inside 'attributes'; give it once"))
            conflicts.extend(
                FieldError(path, problem) for path, problem in json_text_problems(value, name)
            )
            record.attributes[name] = value
        if conflicts:
            raise RowError(conflicts)
        return record

    return parse


def products_import_file(
    *,
    path: str | os.PathLike[str],
    strict: bool = False,
    file_format: FileFormat | None = None,
    progress: Progress | None = None,
    chunk_size: int = PRODUCT_CHUNK_SIZE,
) -> ImportReport:
    """Create or update the products of a CSV or JSON Lines file.

    Columns (or keys) other than the product fields become attributes of the product. Within
    the file a later row for the same ``product_id`` replaces an earlier one.
    """
    started = time.perf_counter()
    with open_records(path, file_format=file_format) as reader:
        _refuse_missing(reader, REQUIRED_PRODUCT_COLUMNS)
        report = _new_report("products", reader, strict)
        chunks = _parsed_chunks(reader, _product_parser(reader), size=chunk_size)
        with _read_ahead(chunks) as ahead, _import_transaction(strict=strict):
            for chunk in ahead:
                chunk.merge_into(report)
                # In strict mode a rejected row dooms the import: skip the remaining writes.
                if chunk.records and not (strict and report.rejected):
                    counts = products_upsert(records=chunk.records)
                    report.products.add_upsert(counts)
                    # A product id repeated within a chunk is written once (the last row wins).
                    written = counts.created + counts.updated + counts.unchanged
                    report.products.duplicates += len(chunk.records) - written
                _report_progress(progress, chunk.fraction)
            if strict and report.rejected:
                transaction.set_rollback(True)
                report.discard_writes()
    return _finish(report, started, progress)


# Events ---------------------------------------------------------------------------------------
def events_import_file(
    *,
    path: str | os.PathLike[str],
    strict: bool = False,
    file_format: FileFormat | None = None,
    progress: Progress | None = None,
    chunk_size: int = EVENT_CHUNK_SIZE,
) -> ImportReport:
    """Insert the events of a CSV or JSON Lines file; known ``event_id``s are duplicates.

    Every product must already exist (an unknown one rejects the row); customers are created
    on first sight. Columns other than the event fields are ignored (and listed in the report).
    """
    started = time.perf_counter()
    with open_records(path, file_format=file_format) as reader:
        _refuse_missing(reader, REQUIRED_EVENT_COLUMNS)
        report = _new_report("events", reader, strict)
        report.ignored_columns = [c for c in reader.columns or () if c and c not in EVENT_FIELDS]
        # The whole catalogue once: a dict lookup per row beats a query per chunk.
        product_map = product_pk_map()
        customer_ids = CustomerIds()
        event_types = frozenset(settings.RECSITE_EVENT_TYPES)
        now = timezone.now()

        chunks: Iterator[_Chunk[EventRecord]]
        if reader.columns is not None:
            # CSV: values as lists, through the fast parser (same records, same messages).
            fast = EventRowParser(reader.columns, event_types=event_types, now=now)
            chunks = _parsed_chunks(
                reader, lambda line, values: fast(values), size=chunk_size,
                rows=reader.csv_value_rows(),
            )  # fmt: skip
        else:

            def parse(line: int, raw: dict[str, Any]) -> EventRecord:
                return parse_event(raw, event_types=event_types, now=now, allowed=None)

            chunks = _parsed_chunks(reader, parse, size=chunk_size)
        chunks = _with_copy_tails(chunks, product_map)
        with _read_ahead(chunks) as ahead, _import_transaction(strict=strict):
            for chunk in ahead:
                chunk.merge_into(report)
                _events_write(report, chunk, product_map, customer_ids, strict=strict)
                _report_progress(progress, chunk.fraction)
            if strict and report.rejected:
                transaction.set_rollback(True)
                report.discard_writes()
    return _finish(report, started, progress)


def _with_copy_tails(
    chunks: Iterator[_Chunk[EventRecord]], product_map: dict[str, int]
) -> Iterator[_Chunk[EventRecord]]:
    """Prepare each chunk's COPY lines where it is parsed (the reader thread), so that the
    writing thread only adds the customer keys while the database works."""
    for chunk in chunks:
        copy_tails_prepare(chunk.records, product_map)
        yield chunk


def _events_write(
    report: ImportReport,
    chunk: _Chunk[EventRecord],
    product_map: dict[str, int],
    customer_ids: CustomerIds,
    *,
    strict: bool,
) -> None:
    records, lines = chunk.records, chunk.lines
    while True:
        unknown = events_unknown_products(records=records, product_map=product_map)
        if unknown:
            for index, error in unknown:
                report.reject(lines[index], [error])
            bad = {index for index, _ in unknown}
            lines = [line for index, line in enumerate(lines) if index not in bad]
            records = [record for index, record in enumerate(records) if index not in bad]
        # In strict mode a rejected row dooms the import: skip the remaining writes.
        if not records or (strict and report.rejected):
            return
        try:
            counts = events_insert(
                records=records, product_map=product_map, customer_ids=customer_ids
            )
        except ProductsDeleted as exc:
            # Deleted while the file was read: their rows are rows of an unknown product now.
            for external_id in exc.external_ids:
                del product_map[external_id]
            continue
        report.events.created += counts.created
        report.events.duplicates += counts.duplicates
        report.customers.created += counts.customers_created
        return


# UCI Online Retail ----------------------------------------------------------------------------
def online_retail_import_file(
    *,
    path: str | os.PathLike[str],
    strict: bool = False,
    progress: Progress | None = None,
    chunk_size: int = EVENT_CHUNK_SIZE,
) -> ImportReport:
    """Import the raw UCI Online Retail export: products, customers and purchase events.

    Two passes over the file: the first checks every line and gathers the catalogue and the
    customers (nothing is written, so a strict import with a bad line writes nothing at all);
    after products and customers are upserted, the second pass inserts the events in chunks.
    The rules (skipped lines, titles, prices, event ids) are in
    ``recommender.ingestion.online_retail`` and ``docs/ingestion.md``.
    """
    started = time.perf_counter()
    first_share = _RETAIL_FIRST_PASS_SHARE
    parse_line = online_retail.LineParser()
    catalogue = online_retail.CatalogueBuilder()
    customers = online_retail.CustomerBuilder()
    with open_records(path, file_format="csv") as reader:
        _refuse_missing(reader, online_retail.COLUMNS)
        report = _new_report("online_retail", reader, strict)
        report.ignored_columns = [
            c for c in reader.columns or () if c and c not in online_retail.COLUMNS
        ]
        skipped = dict.fromkeys(online_retail.SKIP_REASONS, 0)

        def gather(line: int, raw: dict[str, Any]) -> None:
            retail_line = parse_line(line, raw)
            reason = online_retail.skip_reason(retail_line)
            if reason is None:
                customers.add(retail_line)
            else:
                skipped[reason] += 1
            if online_retail.is_catalogue_line(retail_line):
                catalogue.add(retail_line)

        gathered: Iterator[_Chunk[None]] = _parsed_chunks(reader, gather, size=chunk_size)
        for chunk in gathered:
            chunk.merge_into(report)
            _report_progress(progress, chunk.fraction * first_share)
        report.skipped = skipped

    product_records, customer_records = _retail_entities(report, catalogue, customers)
    if strict and report.rejected:
        report.written = False
        return _finish(report, started, progress)

    with _import_transaction(strict=strict):
        report.products.add_upsert(products_upsert(records=product_records))
        report.customers.add_upsert(customers_upsert(records=customer_records))
        _report_progress(progress, first_share)
        _retail_events(report, path, parse_line, progress, chunk_size=chunk_size, strict=strict)
        if strict and report.rejected:
            transaction.set_rollback(True)
            report.discard_writes()
    return _finish(report, started, progress)


def _retail_entities(
    report: ImportReport,
    catalogue: online_retail.CatalogueBuilder,
    customers: online_retail.CustomerBuilder,
) -> tuple[list[ProductRecord], list[CustomerRecord]]:
    # Built through the shared parsers, so an over-long title is refused as it would be
    # anywhere else. A product gathers many lines; an error points at its latest one.
    products = []
    for line, raw in catalogue.raw_products():
        try:
            products.append(parse_product(raw, typed=False))
        except RowError as exc:
            code = raw["product_id"]
            report.reject(
                line, [FieldError(e.field, f"product {code!r}: {e.message}") for e in exc.errors]
            )
    customer_records = [parse_customer(raw) for raw in customers.raw_customers()]
    return products, customer_records


def _retail_events(
    report: ImportReport,
    path: str | os.PathLike[str],
    parse_line: online_retail.LineParser,
    progress: Progress | None,
    *,
    chunk_size: int,
    strict: bool,
) -> None:
    first_share = _RETAIL_FIRST_PASS_SHARE
    product_map = product_pk_map()
    customer_ids = CustomerIds()
    event_types = frozenset(settings.RECSITE_EVENT_TYPES)
    now = timezone.now()
    event_ids = online_retail.EventIds()

    def parse(line: int, raw: dict[str, Any]) -> EventRecord | None:
        try:
            retail_line = parse_line(line, raw)
        except RowError:
            return None  # Reported by the first pass.
        event_id = event_ids.next_id(retail_line)
        if online_retail.skip_reason(retail_line) is not None:
            return None
        raw_event = online_retail.raw_event(retail_line, event_id=event_id)
        return parse_event(raw_event, event_types=event_types, now=now, typed=False)

    with open_records(path, file_format="csv") as reader:
        # Lines the reader could not read were reported by the first pass.
        rows = ((line, raw) for line, raw in reader if not isinstance(raw, RowError))
        chunks = _parsed_chunks(reader, parse, size=chunk_size, rows=rows)
        with _read_ahead(chunks) as ahead:
            for chunk in ahead:
                chunk.merge_into(report, count_rows=False)
                _events_write(report, chunk, product_map, customer_ids, strict=strict)
                _report_progress(progress, first_share + chunk.fraction * (1 - first_share))


# Dispatch -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlannedImport:
    kind: ImportKind
    path: Path


_DATASET_KINDS: tuple[ImportKind, ...] = ("products", "events")
_DATASET_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".csv.gz", ".jsonl.gz", ".ndjson.gz")


def import_kind_detect(
    *, path: str | os.PathLike[str], file_format: FileFormat | None = None
) -> ImportKind:
    """What a file holds, from its header (CSV) or its first object's keys (JSON Lines)."""
    keys = set(record_keys(path, file_format=file_format))
    if {"InvoiceNo", "StockCode"} <= keys:
        return "online_retail"
    if "event_type" in keys:
        return "events"
    if "title" in keys:
        return "products"
    raise FileRefused(
        f"cannot tell what {path} holds: expected InvoiceNo and StockCode (the Online Retail "
        "export), 'title' (products) or 'event_type' (events) among its columns",
        line=1,
    )


def import_plan(
    *, path: str | os.PathLike[str], file_format: FileFormat | None = None
) -> list[PlannedImport]:
    """The imports a path calls for, in order.

    A directory must hold ``products.*`` and/or ``events.*`` (``.csv``, ``.jsonl`` or
    ``.ndjson``, optionally gzipped): products are imported first, so that events can name
    them. A file is one import, of the kind :func:`import_kind_detect` finds.
    """
    target = Path(path)
    if not target.is_dir():
        if not target.exists():
            raise FileRefused(f"cannot read {target}: No such file or directory")
        return [PlannedImport(import_kind_detect(path=target, file_format=file_format), target)]
    plan = []
    for kind in _DATASET_KINDS:
        found = [target / (kind + suffix) for suffix in _DATASET_SUFFIXES]
        found = [candidate for candidate in found if candidate.is_file()]
        if len(found) > 1:
            names = ", ".join(candidate.name for candidate in found)
            raise FileRefused(f"{target} holds several {kind} files ({names}); keep one")
        if found:
            plan.append(PlannedImport(kind, found[0]))
    if not plan:
        raise FileRefused(
            f"{target} holds neither products.(csv|jsonl)[.gz] nor events.(csv|jsonl)[.gz]"
        )
    return plan


def import_run(
    *,
    kind: ImportKind,
    path: str | os.PathLike[str],
    strict: bool = False,
    file_format: FileFormat | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Run one import of the given kind (what a job or the ``import`` command calls)."""
    if kind == "products":
        return products_import_file(
            path=path, strict=strict, file_format=file_format, progress=progress
        )
    if kind == "events":
        return events_import_file(
            path=path, strict=strict, file_format=file_format, progress=progress
        )
    if kind == "online_retail":
        if file_format not in (None, "csv"):
            raise FileRefused("the Online Retail export is a CSV file")
        return online_retail_import_file(path=path, strict=strict, progress=progress)
    raise ValueError(f"unknown import kind {kind!r}; expected one of {list(IMPORT_KINDS)}")
