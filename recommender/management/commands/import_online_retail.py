"""``manage.py import_online_retail PATH``: the raw UCI Online Retail export (CSV or CSV.gz)."""

from pathlib import Path
from typing import Any

from ._importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import the raw UCI Online Retail export: products, customers and one purchase event "
        "per invoice line. Guest lines, cancellations, non-product codes and stock adjustments "
        "are skipped and counted (see docs/ingestion.md)."
    )
    accepts_format = False

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(kind="online_retail", path=Path(options["path"]), options=options)
