"""Importers: products, events and the raw UCI Online Retail export, each from a data file to
the database in chunks, reporting every bad row (semantics in ``docs/ingestion.md``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recommender.ingestion import online_retail
from recommender.ingestion.readers import (
    FileFormat,
    RecordReader,
    open_records,
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
from recommender.services.ingestion import (
    CustomerIds,
    ProductsDeleted,
    copy_tails_prepare,
    customer_attribute_policy,
    customers_upsert,
    events_insert,
    events_unknown_products,
    product_pk_map_for_events,
    products_upsert,
)

from .read_ahead import _Chunk, _parsed_chunks, _read_ahead, _write_in_parallel
from .reports import (
    ImportReport,
    Progress,
    _finish,
    _import_transaction,
    _new_report,
    _refuse_missing,
    _report_progress,
)

# Rows read between two writes (and two progress reports). Large enough for COPY to pay off,
# small enough that a chunk's transaction stays short and progress moves every second or so.
EVENT_CHUNK_SIZE = 20_000
PRODUCT_CHUNK_SIZE = 5_000
# Share of the progress bar taken by the first (reading) pass of the Online Retail import;
# the second pass writes the events and is the slower one.
_RETAIL_FIRST_PASS_SHARE = 0.3


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
        product_map = product_pk_map_for_events()
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
            _events_write_all(
                report, ahead, product_map, strict=strict,
                progress=lambda fraction: _report_progress(progress, fraction),
            )  # fmt: skip
            if strict and report.rejected:
                transaction.set_rollback(True)
                report.discard_writes()
    return _finish(report, started, progress)


def _with_copy_tails(
    chunks: Iterator[_Chunk[EventRecord]], product_map: Mapping[str, int]
) -> Iterator[_Chunk[EventRecord]]:
    """Prepare each chunk's COPY lines where it is parsed (the reader thread), so that the
    writing thread only adds the customer keys while the database works."""
    for chunk in chunks:
        copy_tails_prepare(chunk.records, product_map)
        yield chunk


def _event_writers(*, strict: bool) -> int:
    """Connections an events import writes on: ``RECSITE_IMPORT_WRITERS`` on PostgreSQL, one
    where the writes must share one transaction (a strict import, or a caller's own, as in a
    test) or the database has a single writer (SQLite)."""
    if strict or connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, int(settings.RECSITE_IMPORT_WRITERS))


def _events_write_all(
    report: ImportReport,
    chunks: Iterator[_Chunk[EventRecord]],
    product_map: dict[str, int],
    *,
    strict: bool,
    progress: Callable[[float], None],
    count_rows: bool = True,
) -> None:
    """Write every chunk's events (each chunk one transaction, unless ``strict`` makes the whole
    import one), in order on this connection or on several (:func:`_event_writers`); the report
    is the same either way: each chunk's rows, rejections and counts merged in file order."""
    writers = _event_writers(strict=strict)
    if writers == 1:
        customer_ids = CustomerIds()
        for chunk in chunks:
            chunk.merge_into(report, count_rows=count_rows)
            _events_write(report, chunk, product_map, customer_ids, strict=strict)
            progress(chunk.fraction)
        return
    own = threading.local()  # A CustomerIds per writer: each remembers what its own reads saw.

    def write(chunk: _Chunk[EventRecord]) -> ImportReport:
        if not hasattr(own, "customer_ids"):
            own.customer_ids = CustomerIds()
        part = ImportReport(kind=report.kind, path=report.path, file_format=report.file_format,
                            strict=False)  # fmt: skip
        _events_write(part, chunk, product_map, own.customer_ids, strict=False,
                      customers_first=True)  # fmt: skip
        return part

    def done(chunk: _Chunk[EventRecord], part: ImportReport) -> None:
        chunk.merge_into(report, count_rows=count_rows)
        report.absorb_writes(part)
        progress(chunk.fraction)

    def event_ids(chunk: _Chunk[EventRecord]) -> set[object]:
        return {record.event_id for record in chunk.records}

    _write_in_parallel(chunks, write, done, writers=writers, keys=event_ids)


def _events_write(
    report: ImportReport,
    chunk: _Chunk[EventRecord],
    product_map: dict[str, int],
    customer_ids: CustomerIds,
    *,
    strict: bool,
    customers_first: bool = False,
) -> None:
    """Insert ``chunk``'s events (one transaction) and count them, and its rows of unknown
    products, in ``report``. ``customers_first``: create its customers in a transaction of
    their own first (:meth:`CustomerIds.create`; an import on several connections)."""
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
        if customers_first:
            report.customers.created += customer_ids.create(records)
        try:
            counts = events_insert(
                records=records, product_map=product_map, customer_ids=customer_ids
            )
        except ProductsDeleted as exc:
            # Deleted while the file was read: their rows are rows of an unknown product now.
            for external_id in exc.external_ids:
                product_map.pop(external_id, None)  # Another writer may have seen it too.
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
    policy = customer_attribute_policy()
    customer_records = [parse_customer(raw, policy=policy) for raw in customers.raw_customers()]
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
    product_map = product_pk_map_for_events()
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
            _events_write_all(
                report, ahead, product_map, strict=strict, count_rows=False,
                progress=lambda f: _report_progress(progress, first_share + f * (1 - first_share)),
            )  # fmt: skip
