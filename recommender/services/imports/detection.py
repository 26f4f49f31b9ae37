"""Import detection and dispatch: what a file or folder holds (from its header or first keys),
the imports it calls for, in order, and running one import of a kind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recommender.ingestion.readers import (
    FileFormat,
    FileRefused,
    record_keys,
)

from .importers import events_import_file, online_retail_import_file, products_import_file
from .reports import IMPORT_KINDS, ImportKind, ImportReport, Progress


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
