"""``manage.py import_events PATH``: insert behaviour events from a CSV or JSONL file."""

from pathlib import Path
from typing import Any

from ._importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import events from a CSV or JSON Lines file (optionally gzipped). Products must exist; "
        "customers are created on first sight; a known event_id is a duplicate, not an error."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(kind="events", path=Path(options["path"]), options=options)
