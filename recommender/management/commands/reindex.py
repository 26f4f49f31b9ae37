"""Embed new and changed products, then build, check and publish a new vector index."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.management.bar import job_run_with_bar
from jobs.services.runs import job_create
from recommender.choices import JobKind
from recommender.services.embeddings import get_embedder
from recommender.services.index import index_build_latest_ready, index_is_current
from recommender.tasks import reindex_signature


class Command(BaseCommand):
    help = (
        "Embed new and changed products and build a new vector index, with a progress bar. "
        "--background hands the work to the Celery workers and follows it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the job for the workers (gpu, then cpu queue) and follow its progress.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--if-needed",
            action="store_true",
            help="Do nothing when the newest index is of the current model and no product "
            "awaits embedding (scripts/demo.sh uses this on every start).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_needed"]:
            model_name = get_embedder().model_name
            if index_is_current(model_name=model_name):
                build = index_build_latest_ready()
                assert build is not None
                self.stdout.write(
                    f"Index build {build.pk} ({build.item_count} vectors, {model_name}) is "
                    "current; nothing to do."
                )
                return
        job = job_create(kind=JobKind.REINDEX, params={"source": "manage.py reindex"})
        job = job_run_with_bar(
            job,
            name="reindex",
            enqueue=reindex_signature(job_id=job.pk) if options["background"] else None,
            progress=not options["no_progress"],
            stream=self.stderr,
        )
        embed, build = job.counts["embed"], job.counts["build"]
        self.stdout.write(
            f"Embedded {embed['embedded']} products ({embed['unchanged']} unchanged) in "
            f"{embed['seconds']:.1f} s.\n"
            f"Index build {build['index_build']}: {build['items']} vectors of dimension "
            f"{build['dimension']}, self-check recall@10 {build['self_check_recall']:.4f}, "
            f"built in {build['seconds']:.1f} s."
        )
