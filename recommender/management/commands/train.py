"""Fit the recommendation engine on every product and event and publish the build."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.management.bar import job_run_with_bar
from jobs.services.runs import job_create
from recommender.choices import JobKind
from recommender.services.refresh import refresh_plan
from recommender.tasks import train_signature


class Command(BaseCommand):
    help = (
        "Fit the recommendation engine with the active configuration and publish it; serving "
        "processes pick it up without a restart. --background hands the work to the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the job for the workers (cpu queue, then the sequential model on the gpu "
            "queue) and follow it.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--no-autotune",
            action="store_true",
            help="Fit with the active configuration as it is, without the validation search "
            "(RECSITE_AUTOTUNE_SECONDS sets its budget; docs/tuning.md).",
        )
        parser.add_argument(
            "--if-needed",
            action="store_true",
            help="Do nothing when the newest engine build already covers every event, product "
            "and the active configuration (the nightly refresh's test).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_needed"]:
            plan = refresh_plan()
            if not plan.train:
                reasons = "; ".join(plan.reasons) or "the newest engine build is current"
                self.stdout.write(f"Nothing to do: {reasons}.")
                return
        params: dict[str, Any] = {"source": "manage.py train"}
        if options["no_autotune"]:
            params["autotune"] = False
        job = job_create(kind=JobKind.TRAIN, params=params)
        job = job_run_with_bar(
            job,
            name="train",
            enqueue=train_signature(job_id=job.pk) if options["background"] else None,
            progress=not options["no_progress"],
            stream=self.stderr,
        )
        tuned = job.counts.get("autotune") or {}
        if tuned.get("reason"):
            self.stdout.write(f"Automatic tuning: {tuned['reason']}.")
        fit = job.counts["fit"]
        self.stdout.write(
            f"Engine build {fit['engine_build']}: {fit['items']} products, {fit['customers']} "
            f"customers, {fit['events']} events, config version {fit['config_version']}, "
            f"fitted in {fit['seconds']:.1f} s; tuning sample of "
            f"{job.counts['tuning-sample']['tuning_sample_customers']} customers prepared."
        )
        peak = fit.get("peak_memory_mb")
        self.stdout.write(
            f"Collaborative model: {fit['collaborative']}. Memory: estimated "
            f"{fit['memory_estimate_mb']} MiB"
            + (f", peak {peak} MiB." if peak is not None else ".")
        )
        if fit.get("reranker") not in (None, "off"):
            self.stdout.write(f"Reranker: {fit['reranker']}.")
        sequential = job.counts.get("sequential", {})
        if sequential.get("message"):
            self.stdout.write(f"Sequential model: {sequential['message']}.")
