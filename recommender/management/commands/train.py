"""Fit the recommendation engine on every product and event and publish the build."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from recommender.choices import JobKind, JobState
from recommender.models import Job
from recommender.services.jobs import job_create, job_run
from recommender.tasks import engine_train


class Command(BaseCommand):
    help = (
        "Fit the recommendation engine with the active configuration and publish it; serving "
        "processes pick it up without a restart. --background hands the work to the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the job for the workers (cpu queue) and follow it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        job = job_create(kind=JobKind.TRAIN, params={"source": "manage.py train"})
        try:
            if options["background"]:
                transaction.on_commit(lambda: engine_train.delay(job_id=job.pk))
                job = self._follow(job)
            else:
                job = job_run(job_id=job.pk)
        except Exception as exc:
            job.refresh_from_db()
            raise CommandError(f"train job {job.pk} failed: {job.error or exc}") from exc
        if job.state != JobState.SUCCEEDED:
            raise CommandError(f"train job {job.pk} {job.state}: {job.error}")
        fit = job.counts["fit"]
        self.stdout.write(
            f"Engine build {fit['engine_build']}: {fit['items']} products, {fit['customers']} "
            f"customers, {fit['events']} events, config version {fit['config_version']}, "
            f"fitted in {fit['seconds']:.1f} s; tuning sample of "
            f"{job.counts['tuning-sample']['tuning_sample_customers']} customers prepared."
        )

    def _follow(self, job: Job) -> Job:
        while job.state in (JobState.QUEUED, JobState.RUNNING):
            time.sleep(0.5)
            job.refresh_from_db()
        return job
