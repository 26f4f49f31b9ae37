"""``manage.py import_products PATH``: create or update products from a CSV or JSONL file."""

from pathlib import Path
from typing import Any

from ._importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import products from a CSV or JSON Lines file (optionally gzipped). Columns other than "
        "the product fields become attributes. Re-running the same file changes nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(kind="products", path=Path(options["path"]), options=options)
