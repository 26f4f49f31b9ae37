"""Import reports: what an import read, wrote, skipped and rejected (:class:`ImportReport`), and
the steps every importer shares around it (refusing missing columns, the strict transaction,
progress, the closing planner-statistics refresh).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from django.db import connection, transaction

from recommender.ingestion.readers import (
    FileRefused,
    RecordReader,
    missing_columns,
)
from recommender.ingestion.records import (
    FieldError,
)
from recommender.models import Customer, Event, Product
from recommender.services.ingestion import (
    UpsertCounts,
)

Progress = Callable[[float], None]
ImportKind = Literal["products", "events", "online_retail"]
IMPORT_KINDS: tuple[ImportKind, ...] = ("products", "events", "online_retail")

# Row errors kept in a report (every rejected row is still counted). Bounds the memory and the
# size of a job record when a whole file is wrong.
MAX_ERRORS_KEPT = 10_000


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
            self._keep(ImportRowError(line, error.field, error.message))

    def _keep(self, error: ImportRowError) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)
        else:
            self.errors_not_kept += 1

    def absorb_writes(self, part: ImportReport) -> None:
        """Add what writing one chunk into ``part`` (a report of its own) rejected and wrote."""
        self.rejected += part.rejected
        for error in part.errors:
            self._keep(error)
        self.errors_not_kept += part.errors_not_kept
        for mine, theirs in ((self.events, part.events), (self.customers, part.customers)):
            mine.created += theirs.created
            mine.duplicates += theirs.duplicates

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
