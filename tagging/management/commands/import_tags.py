"""Import a tag vocabulary from a CSV file with ``name`` and optional ``description`` columns."""

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tagging.services import TagError, tag_ensure


class Command(BaseCommand):
    help = (
        "Create the tags of a CSV file (columns: name, description; a name 'a/b' also creates "
        "'a'). Tags that exist are left as they are, so a rerun creates nothing. A bad row stops "
        "the import and nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="CSV file with a header row: name[,description]")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        if rows and "name" not in rows[0]:
            raise CommandError(f"{path}: expected a 'name' column, got {list(rows[0])}")
        created = 0
        with transaction.atomic():
            for line, row in enumerate(rows, start=2):
                try:
                    _, new = tag_ensure(
                        name=row.get("name") or "", description=row.get("description") or ""
                    )
                except TagError as exc:
                    raise CommandError(f"{path}, line {line}: {exc}") from exc
                created += new
        self.stdout.write(f"{len(rows)} tags read from {path}: {created} created.")
