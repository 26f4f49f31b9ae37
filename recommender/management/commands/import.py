"""``manage.py import PATH``: import a folder or file, telling its content from its columns."""

from typing import Any

from django.core.management.base import CommandError

from recommender.ingestion.readers import FileRefused
from recommender.services.imports import import_plan

from ._importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import a folder holding products.(csv|jsonl)[.gz] and/or events.(csv|jsonl)[.gz] "
        "(products first), or one file: the Online Retail export (InvoiceNo and StockCode "
        "columns), products (a title column) or events (an event_type column)."
    )
    path_help = "A folder with products/events files, or one file (plain or gzipped)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            plan = import_plan(path=options["path"], file_format=options["file_format"])
        except FileRefused as exc:
            raise CommandError(str(exc)) from exc
        for step in plan:
            self.stdout.write(f"Importing {step.kind.replace('_', ' ')} from {step.path}")
            self.run_import(kind=step.kind, path=step.path, options=options)
