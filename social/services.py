"""Writes of the social app: relationships in batches (idempotent), from files, and the Ciao
importer (ratings become events, trust edges relationships).

Idempotent like the events: an edge is unique per (source, target, type), so sending a batch or
a file again changes nothing (``unchanged``); a known edge sent with another weight is
``updated``; its ``created_at`` stays the first one. A customer named by an edge but unknown is
created on first sight, as events do (docs/ingestion.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from recommender.ingestion.readers import FileFormat, open_records
from recommender.ingestion.records import RowError, parse_event, parse_product
from recommender.services.activity import events_lock_shared
from recommender.services.imports.read_ahead import _Chunk, _parsed_chunks, _read_ahead
from recommender.services.imports.reports import (
    ImportReport,
    Progress,
    _finish,
    _import_transaction,
    _new_report,
    _refuse_missing,
    _report_progress,
)
from recommender.services.ingestion import (
    CustomerIds,
    customer_pk_map_ensure,
    events_insert,
    product_pk_map_for_events,
    products_upsert,
)

from .models import Relationship
from .records import REQUIRED_RELATIONSHIP_COLUMNS, RelationshipRecord, parse_relationship
from .selectors import relationships_seen

RELATIONSHIP_CHUNK_SIZE = 20_000


@dataclass(slots=True)
class RelationshipCounts:
    """Edges written by one call: a ``friend`` row counts as its two edges. ``duplicates``: an
    edge repeated within the call (the last one counts)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    customers_created: int = 0

    def add(self, other: RelationshipCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.customers_created += other.customers_created


@transaction.atomic
def relationships_upsert(
    *, records: Sequence[RelationshipRecord], customer_ids: CustomerIds | None = None
) -> RelationshipCounts:
    """Create the new edges of ``records`` and update the weight of known ones; all or nothing.

    Customers are created on first sight. Holds the events lock shared, as event inserts do,
    so a customer being forgotten cannot lose its row under an edge that names it.
    """
    edges: dict[tuple[str, str, str], RelationshipRecord] = {}
    total = 0
    for record in records:
        for source, target in record.edges():
            edges[(source, target, record.type)] = record
            total += 1
    counts = RelationshipCounts(duplicates=total - len(edges))
    if not edges:
        return counts
    events_lock_shared()
    names = {name for key in edges for name in key[:2]}
    if connection.vendor == "postgresql":
        pks, counts.customers_created = (customer_ids or CustomerIds()).resolve(
            names, now=timezone.now()
        )
        _upsert_postgres(edges, pks, counts)
    else:
        pks, counts.customers_created = customer_pk_map_ensure(external_ids=names)
        _upsert_orm(edges, pks, counts)
    relationships_seen()  # This process reads networks from now on.
    return counts


def _upsert_postgres(
    edges: dict[tuple[str, str, str], RelationshipRecord],
    pks: dict[str, int],
    counts: RelationshipCounts,
) -> None:
    table = Relationship._meta.db_table
    keys = sorted(edges, key=lambda k: (pks[k[0]], pks[k[1]], k[2]))  # One lock order.
    # Each column as one array literal: the driver quotes five strings instead of adapting
    # 100,000 values one by one (that took two thirds of an import's time). Ids are integers,
    # types one of RELATIONSHIP_TYPES, weights and times floats (epoch seconds): nothing to
    # escape.
    records = [edges[k] for k in keys]
    moments: dict[object, str] = {}  # Most edges of a call share their time (when received).
    for record in records:
        if record.created_at not in moments:
            moments[record.created_at] = repr(record.created_at.timestamp())
    columns = [
        _array([str(pks[k[0]]) for k in keys]),
        _array([str(pks[k[1]]) for k in keys]),
        _array([k[2] for k in keys]),
        _array([repr(r.weight) for r in records]),
        _array([moments[r.created_at] for r in records]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS r (source_id, target_id, type, weight, created_at) "
            "SELECT s, t, k, w, to_timestamp(c) FROM unnest(%s::bigint[], %s::bigint[], "
            "%s::text[], %s::float8[], %s::float8[]) AS u(s, t, k, w, c) "
            "ON CONFLICT (source_id, target_id, type) DO UPDATE SET weight = EXCLUDED.weight "
            "WHERE r.weight IS DISTINCT FROM EXCLUDED.weight RETURNING (xmax = 0)",
            columns,
        )
        returned = [row[0] for row in cursor.fetchall()]
    counts.created += sum(1 for inserted in returned if inserted)
    counts.updated += sum(1 for inserted in returned if not inserted)
    counts.unchanged += len(keys) - len(returned)


def _array(values: list[str]) -> str:
    return "{" + ",".join(values) + "}"


def _upsert_orm(
    edges: dict[tuple[str, str, str], RelationshipRecord],
    pks: dict[str, int],
    counts: RelationshipCounts,
) -> None:
    sources = sorted({pks[k[0]] for k in edges})
    known: dict[tuple[int, int, str], Relationship] = {}
    for start in range(0, len(sources), 900):  # SQLite's limit on bound variables.
        for edge in Relationship.objects.filter(source_id__in=sources[start : start + 900]):
            known[(edge.source_id, edge.target_id, edge.type)] = edge
    new: list[Relationship] = []
    changed: list[Relationship] = []
    for key, record in edges.items():
        pk_key = (pks[key[0]], pks[key[1]], key[2])
        found = known.get(pk_key)
        if found is None:
            new.append(
                Relationship(
                    source_id=pk_key[0],
                    target_id=pk_key[1],
                    type=key[2],
                    weight=record.weight,
                    created_at=record.created_at,
                )
            )
        elif found.weight != record.weight:
            found.weight = record.weight
            changed.append(found)
        else:
            counts.unchanged += 1
    Relationship.objects.bulk_create(new, batch_size=500)
    Relationship.objects.bulk_update(changed, ["weight"], batch_size=500)
    counts.created += len(new)
    counts.updated += len(changed)


def relationships_import_file(
    *,
    path: str | os.PathLike[str],
    strict: bool = False,
    file_format: FileFormat | None = None,
    progress: Progress | None = None,
    chunk_size: int = RELATIONSHIP_CHUNK_SIZE,
) -> tuple[ImportReport, RelationshipCounts]:
    """Import the relationships of a CSV or JSON Lines file (docs/ingestion.md): every bad row
    reported by line, valid ones written in chunks (``strict``: nothing when any is bad)."""
    started = time.perf_counter()
    counts = RelationshipCounts()
    with open_records(path, file_format=file_format) as reader:
        _refuse_missing(reader, REQUIRED_RELATIONSHIP_COLUMNS)
        report = _new_report("relationships", reader, strict)  # type: ignore[arg-type]
        now = timezone.now()
        typed = reader.columns is None

        def parse(line: int, raw: dict[str, Any]) -> RelationshipRecord:
            # Columns that are not relationship fields are ignored, as for events.
            return parse_relationship(raw, now=now, allowed=None, typed=typed)

        chunks: Iterator[_Chunk[RelationshipRecord]] = _parsed_chunks(
            reader, parse, size=chunk_size
        )
        customer_ids = CustomerIds()
        with _read_ahead(chunks) as ahead, _import_transaction(strict=strict):
            for chunk in ahead:
                chunk.merge_into(report)
                if chunk.records and not (strict and report.rejected):
                    counts.add(
                        relationships_upsert(records=chunk.records, customer_ids=customer_ids)
                    )
                _report_progress(progress, chunk.fraction)
            if strict and report.rejected:
                transaction.set_rollback(True)
                report.discard_writes()
                counts = RelationshipCounts()
    report.customers.created = counts.customers_created
    return _finish(report, started, progress), counts


# Ciao ------------------------------------------------------------------------------------------
CIAO_RATINGS = "ratings.csv.gz"
CIAO_TRUST = "trust.csv.gz"
CIAO_RATING_COLUMNS = ("customer_id", "product_id", "category_id", "rating", "timestamp")
CIAO_TRUST_COLUMNS = ("customer_id", "trusted_customer_id")


def ciao_event_type(rating: int) -> str:
    """A rating as a behaviour event: 4-5 a purchase (a positive), 3 a click (a weaker signal),
    0-2 a view (the weakest: the customer knew the product and did not like it)."""
    if rating >= 4:
        return "purchase"
    return "click" if rating == 3 else "view"


@dataclass
class CiaoReport:
    products: RelationshipCounts
    events_created: int = 0
    events_duplicates: int = 0
    customers_created: int = 0
    relationships: RelationshipCounts | None = None
    rejected: list[str] | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        rel = self.relationships or RelationshipCounts()
        return "\n".join(
            [
                f"ciao: imported in {self.seconds:.1f} s",
                f"  products:      {self.products.created:,} created, "
                f"{self.products.updated:,} updated, {self.products.unchanged:,} unchanged",
                f"  events:        {self.events_created:,} created, "
                f"{self.events_duplicates:,} duplicates",
                f"  customers:     {self.customers_created:,} created",
                f"  relationships: {rel.created:,} created, {rel.updated:,} updated, "
                f"{rel.unchanged:,} unchanged",
                f"  rejected:      {len(self.rejected or [])} rows",
            ]
        )


def ciao_import(
    *, directory: str | os.PathLike[str], progress: Progress | None = None
) -> CiaoReport:
    """Import the Ciao data set from ``directory`` (``ratings.csv.gz``, ``trust.csv.gz``;
    docs/ingestion.md): products with placeholder titles and their category, every rating an
    event (:func:`ciao_event_type`), every trust edge a ``trusts`` relationship. Idempotent:
    event ids derive from the rating, so a second run creates nothing."""
    started = time.perf_counter()
    base = os.fspath(directory)
    now = timezone.now()
    rejected: list[str] = []
    products, raw_events = _ciao_ratings(os.path.join(base, CIAO_RATINGS), rejected, progress)
    report = CiaoReport(products=_ciao_products(products, rejected), rejected=rejected)
    _report_progress(progress, 0.4)
    customer_ids = CustomerIds()
    _ciao_events(report, raw_events, customer_ids, now=now, progress=progress)
    edges = _ciao_trust(os.path.join(base, CIAO_TRUST), rejected, now=now)
    rel = RelationshipCounts()
    for start in range(0, len(edges), RELATIONSHIP_CHUNK_SIZE):
        chunk = edges[start : start + RELATIONSHIP_CHUNK_SIZE]
        rel.add(relationships_upsert(records=chunk, customer_ids=customer_ids))
    report.relationships = rel
    report.customers_created += rel.customers_created
    report.seconds = round(time.perf_counter() - started, 1)
    _report_progress(progress, 1.0)
    return report


def _ciao_ratings(
    path: str, rejected: list[str], progress: Progress | None
) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    """The products (raw, first sight) and the raw events of the ratings file."""
    products: dict[str, dict[str, str]] = {}
    raw_events: list[dict[str, str]] = []
    with open_records(path, file_format="csv") as reader:
        _refuse_missing(reader, CIAO_RATING_COLUMNS)
        for line, raw in reader:
            if isinstance(raw, RowError):
                rejected.append(f"{CIAO_RATINGS} line {line}: {raw}")
                continue
            try:
                rating = int(raw["rating"])
            except ValueError:
                rejected.append(f"{CIAO_RATINGS} line {line}: rating: not an integer")
                continue
            pid, category = raw["product_id"].strip(), raw["category_id"].strip()
            products.setdefault(
                pid,
                {"product_id": pid, "title": f"Ciao product {pid}",
                 "category": f"category {category}"},
            )  # fmt: skip
            raw_events.append(
                {
                    "event_id": f"ciao:{raw['customer_id']}:{pid}:{raw['timestamp']}:{rating}",
                    "customer_id": raw["customer_id"],
                    "product_id": pid,
                    "event_type": ciao_event_type(rating),
                    "timestamp": raw["timestamp"],
                }
            )
            _report_progress(progress, 0.3 * reader.fraction)
    return products, raw_events


def _ciao_products(products: dict[str, dict[str, str]], rejected: list[str]) -> RelationshipCounts:
    records = []
    for raw in products.values():
        try:
            records.append(parse_product(raw, typed=False))
        except RowError as exc:
            rejected.append(f"{CIAO_RATINGS}: product {raw['product_id']}: {exc}")
    counts = RelationshipCounts()
    for start in range(0, len(records), 5_000):
        upserted = products_upsert(records=records[start : start + 5_000])
        counts.created += upserted.created
        counts.updated += upserted.updated
        counts.unchanged += upserted.unchanged
    return counts


def _ciao_events(
    report: CiaoReport,
    raw_events: list[dict[str, str]],
    customer_ids: CustomerIds,
    *,
    now: datetime,
    progress: Progress | None,
) -> None:
    product_map = product_pk_map_for_events()
    event_types = ("purchase", "click", "view")
    rejected = report.rejected if report.rejected is not None else []
    for start in range(0, len(raw_events), 20_000):
        records = []
        for raw in raw_events[start : start + 20_000]:
            try:
                records.append(parse_event(raw, event_types=event_types, now=now, typed=False))
            except RowError as exc:
                rejected.append(f"{CIAO_RATINGS}: event {raw['event_id']}: {exc}")
        inserted = events_insert(
            records=records, product_map=product_map, customer_ids=customer_ids
        )
        report.events_created += inserted.created
        report.events_duplicates += inserted.duplicates
        report.customers_created += inserted.customers_created
        _report_progress(progress, 0.4 + 0.5 * (start + 20_000) / max(len(raw_events), 1))


def _ciao_trust(path: str, rejected: list[str], *, now: datetime) -> list[RelationshipRecord]:
    edges: list[RelationshipRecord] = []
    with open_records(path, file_format="csv") as reader:
        _refuse_missing(reader, CIAO_TRUST_COLUMNS)
        for line, raw in reader:
            if isinstance(raw, RowError):
                rejected.append(f"{CIAO_TRUST} line {line}: {raw}")
                continue
            row = {"customer_id": raw["customer_id"],
                   "target_customer_id": raw["trusted_customer_id"], "type": "trusts"}  # fmt: skip
            try:
                edges.append(parse_relationship(row, now=now, typed=False))
            except RowError as exc:
                rejected.append(f"{CIAO_TRUST} line {line}: {exc}")
    return edges
