"""Score every customer's churn risk now (training first when needed), with a progress bar."""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from churn.services import churn_job_create
from churn.tasks import churn_job_run
from jobs.management.bar import job_run_with_bar


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Run a churn job: train the model when it is missing or a week old (or with "
        "--retrain), then score every customer with a purchase. --background hands it to the "
        "workers (cpu queue)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--retrain", action="store_true", help="Train a model first.")
        parser.add_argument(
            "--as-of",
            type=_moment,
            help="Score as of this moment (ISO 8601; default: the day after the newest event).",
        )
        parser.add_argument("--background", action="store_true", help="Queue and follow it.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        job = churn_job_create(retrain=options["retrain"], as_of=options["as_of"])
        job = job_run_with_bar(
            job,
            name="churn",
            enqueue=churn_job_run.si(job_id=job.pk) if options["background"] else None,
            progress=not options["no_progress"],
            stream=self.stderr,
        )
        train, score = job.counts["train"], job.counts["score"]
        trained = "trained" if train["trained"] else "reused"
        self.stdout.write(
            f"Model {score['model_version']} ({trained}); {score['customers']:,} customers "
            f"scored as of {score['as_of']} in {score['seconds']:.1f} s: "
            + ", ".join(f"{n:,} {band}" for band, n in score["bands"].items())
        )
