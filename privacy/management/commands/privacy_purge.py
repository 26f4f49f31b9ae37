"""Run the purge job for every pending forget request now (the beat task does it by itself)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.management.bar import job_run_with_bar
from privacy.services.forgetting import purge_job_create
from privacy.tasks import privacy_purge_run


class Command(BaseCommand):
    help = (
        "Purge every pending forgotten customer from the derived artifacts now: refit the "
        "engine, retrain the churn model, retire the builds made with them, verify. "
        "--background hands it to the workers (cpu queue) and follows it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--background", action="store_true", help="Queue and follow it.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        job = purge_job_create()
        if job is None:
            self.stdout.write("Nothing to purge (no pending forget request, or a purge job runs).")
            return
        job = job_run_with_bar(
            job,
            name="privacy purge",
            enqueue=privacy_purge_run.si(job_id=job.pk) if options["background"] else None,
            progress=not options["no_progress"],
            stream=self.stderr,
        )
        verify = job.counts["verify"]
        self.stdout.write(
            f"Purge job {job.pk}: forget requests {verify['applied']} applied at "
            f"{verify['applied_at']}."
        )
