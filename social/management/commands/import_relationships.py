"""``manage.py import_relationships FILE``: relationships from a CSV or JSON Lines file."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.ingestion.readers import FORMATS, FileRefused
from social.services import relationships_import_file


class Command(BaseCommand):
    help = (
        "Import relationships between customers (customer_id, target_customer_id, type, weight, "
        "created_at) from a CSV or JSON Lines file, plain or gzipped (docs/ingestion.md). Every "
        "bad row is reported with its line; a second run changes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", help="The file to import (plain or gzipped).")
        parser.add_argument(
            "--strict", action="store_true", help="Import nothing if any row is bad."
        )
        parser.add_argument("--format", dest="file_format", choices=FORMATS)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
        parser.add_argument("--max-errors", type=int, default=20, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(total=100, desc=path.name, file=stream, disable=options["no_progress"]) as bar:

            def progress(fraction: float) -> None:
                bar.update(max(0, round(fraction * 100) - bar.n))

            try:
                report, counts = relationships_import_file(
                    path=path, strict=options["strict"], file_format=options["file_format"],
                    progress=progress,
                )  # fmt: skip
            except FileRefused as exc:
                raise CommandError(f"{path}: refused: {exc}") from exc
        for error in report.errors[: max(options["max_errors"], 0)]:
            self.stderr.write(str(error))
        hidden = len(report.errors) - max(options["max_errors"], 0) + report.errors_not_kept
        if hidden > 0:
            self.stderr.write(f"… and {hidden:,} more row errors (--max-errors to see more)")
        self.stdout.write(
            f"{path}: {report.rows:,} rows read ({report.file_format}) in {report.seconds:.1f} s\n"
            f"  relationships: {counts.created:,} created, {counts.updated:,} updated, "
            f"{counts.unchanged:,} unchanged, {counts.duplicates:,} repeated in the file\n"
            f"  customers:     {counts.customers_created:,} created\n"
            f"  rejected:      {report.rejected:,} rows"
        )
        if report.rejected and report.strict:
            raise CommandError(
                f"{path}: {report.rejected:,} rows rejected; --strict: nothing was imported"
            )
