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

The modules: ``reports`` (the report and the steps every importer shares), ``read_ahead``
(parsing in a worker thread ahead of the writes), ``importers`` (products, events, Online Retail)
and ``detection`` (what a path holds, the plan, dispatch). Their public names are re-exported
here: the commands, the import job (by name) and the tests use them as one service.
"""

from .detection import PlannedImport, import_kind_detect, import_plan, import_run
from .importers import (
    EVENT_CHUNK_SIZE,
    PRODUCT_CHUNK_SIZE,
    events_import_file,
    online_retail_import_file,
    products_import_file,
)
from .reports import (
    IMPORT_KINDS,
    MAX_ERRORS_KEPT,
    EntityCounts,
    ImportKind,
    ImportReport,
    ImportRowError,
    Progress,
)

__all__ = [
    "EVENT_CHUNK_SIZE",
    "IMPORT_KINDS",
    "MAX_ERRORS_KEPT",
    "PRODUCT_CHUNK_SIZE",
    "EntityCounts",
    "ImportKind",
    "ImportReport",
    "ImportRowError",
    "PlannedImport",
    "Progress",
    "events_import_file",
    "import_kind_detect",
    "import_plan",
    "import_run",
    "online_retail_import_file",
    "products_import_file",
]
