"""Auto-tag products: embed new and changed ones, score them against the tag vocabulary."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.management.bar import job_run_with_bar
from jobs.services.runs import job_create
from tagging.models import TaggingJobKind
from tagging.services import DEFAULT_THRESHOLD, DEFAULT_TOP_K
from tagging.tasks import tag_job_run


class Command(BaseCommand):
    help = (
        "Suggest tags for products (pending review), with a progress bar. Merchants' decisions "
        "are never overwritten. --background hands the job to the gpu-queue worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only-new",
            action="store_true",
            help="Only products new or changed since the last successful tagging job.",
        )
        parser.add_argument(
            "--threshold",
            type=float,
            default=DEFAULT_THRESHOLD,
            help=f"Least confidence of a suggestion (0..1, default {DEFAULT_THRESHOLD}).",
        )
        parser.add_argument(
            "--top-k",
            type=int,
            default=DEFAULT_TOP_K,
            help=f"Most suggestions per product (default {DEFAULT_TOP_K}).",
        )
        parser.add_argument("--background", action="store_true", help="Queue it for a worker.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 <= options["threshold"] <= 1:
            raise CommandError("--threshold: must be within 0 and 1")
        if options["top_k"] < 1:
            raise CommandError("--top-k: must be at least 1")
        params = {
            "only_new": options["only_new"],
            "threshold": options["threshold"],
            "top_k": options["top_k"],
            "source": "manage.py tag_products",
        }
        job = job_create(kind=TaggingJobKind.TAG, params=params)
        job = job_run_with_bar(
            job,
            name="tagging",
            enqueue=tag_job_run.si(job_id=job.pk) if options["background"] else None,
            progress=not options["no_progress"],
            stream=self.stderr,
        )
        embed, tag = job.counts["embed"], job.counts["tag"]
        self.stdout.write(
            f"Embedded {embed['embedded']} products in {embed['seconds']:.1f} s.\n"
            f"Tagged {tag['products']} products against {tag['tags']} tags in "
            f"{tag['seconds']:.1f} s: {tag['suggested']} suggestions pending review, "
            f"{tag['kept_decisions']} merchant decisions kept, {tag['dropped']} stale "
            f"suggestions dropped ({tag['model_version']})."
        )
        if tag["seconds"] > 0 and tag["products"]:
            self.stdout.write(f"Throughput: {tag['products'] / tag['seconds']:.0f} products/s.")
