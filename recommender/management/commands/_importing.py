"""What the import commands share: options, the progress bar and the printed report.

A private module (the leading underscore keeps Django from listing it as a command).
"""

from __future__ import annotations

import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.ingestion.readers import FORMATS, FileRefused
from recommender.services.imports import ImportKind, ImportReport, import_run

DEFAULT_MAX_ERRORS = 20


class ImportCommand(BaseCommand):
    """Base of the import commands: parse the options, run one import, print its report."""

    accepts_format = True
    path_help = "The file to import (plain or gzipped)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", help=self.path_help)
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Import nothing if any row is bad (bad rows are still all reported).",
        )
        if self.accepts_format:
            parser.add_argument(
                "--format",
                dest="file_format",
                choices=FORMATS,
                help="File format; by default *.jsonl/*.ndjson[.gz] is JSON Lines, others CSV.",
            )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
        parser.add_argument(
            "--max-errors",
            type=int,
            default=DEFAULT_MAX_ERRORS,
            metavar="N",
            help=f"Print at most N row errors (all are counted; default {DEFAULT_MAX_ERRORS}).",
        )

    def run_import(self, *, kind: ImportKind, path: Path, options: dict[str, Any]) -> ImportReport:
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
        # The bar writes to the real stream: Django's OutputWrapper would add a newline to
        # every carriage-return redraw.
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=path.name,
            file=stream,
            disable=options["no_progress"],
            leave=True,
        ) as bar:

            def progress(fraction: float) -> None:
                bar.update(max(0, round(fraction * size) - bar.n))

            try:
                report = import_run(
                    kind=kind,
                    path=path,
                    strict=options["strict"],
                    file_format=options.get("file_format"),
                    progress=progress,
                )
            except FileRefused as exc:
                raise CommandError(f"{path}: refused: {exc}") from exc
        self.print_report(report, max_errors=options["max_errors"])
        return report

    def print_report(self, report: ImportReport, *, max_errors: int) -> None:
        shown = report.errors[: max(max_errors, 0)]
        for error in shown:
            self.stderr.write(str(error))
        not_shown = len(report.errors) - len(shown) + report.errors_not_kept
        if not_shown:
            self.stderr.write(f"… and {not_shown:,} more row errors (--max-errors to see more)")
        self.stdout.write(report.summary())
        if report.rejected and report.strict:
            raise CommandError(
                f"{report.path}: {report.rejected:,} rows rejected; --strict: nothing was imported"
            )
        if report.rejected:
            self.stderr.write(
                self.style.WARNING(
                    f"warning: {report.rejected:,} rows rejected (see above); "
                    "the other rows were imported"
                )
            )
