"""``manage.py import_ciao DIR``: the Ciao data set (ratings and who-trusts-whom)."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.ingestion.readers import FileRefused
from social.services import CIAO_RATINGS, CIAO_TRUST, ciao_import


class Command(BaseCommand):
    help = (
        f"Import the Ciao data set from DIR ({CIAO_RATINGS}, {CIAO_TRUST}): products with "
        "placeholder titles and their category, ratings as events (4-5 purchase, 3 click, 0-2 "
        "view), trust edges as 'trusts' relationships (docs/ingestion.md). Idempotent."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("directory", help=f"A folder holding {CIAO_RATINGS} and {CIAO_TRUST}.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["directory"])
        missing = [name for name in (CIAO_RATINGS, CIAO_TRUST) if not (directory / name).is_file()]
        if missing:
            raise CommandError(f"{directory}: missing {', '.join(missing)}")
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(total=100, desc="ciao", file=stream, disable=options["no_progress"]) as bar:

            def progress(fraction: float) -> None:
                bar.update(max(0, round(fraction * 100) - bar.n))

            try:
                report = ciao_import(directory=directory, progress=progress)
            except FileRefused as exc:
                raise CommandError(f"{directory}: refused: {exc}") from exc
        for line in (report.rejected or [])[:20]:
            self.stderr.write(line)
        self.stdout.write(report.summary())
