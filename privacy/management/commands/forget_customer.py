"""Forget a customer (right to be forgotten), as ``DELETE /api/v1/customers/<id>/`` does."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.management.bar import job_run_with_bar
from privacy.context import acting_as
from privacy.models import ForgetRequest
from privacy.services.forgetting import purge_job_create
from recommender.models import Customer
from recommender.services.ingestion import customer_forget


class Command(BaseCommand):
    help = (
        "Forget a customer: delete them and their events at once and record a forget request; "
        "the purge job removes them from every derived artifact by the deadline "
        "(RECSITE_FORGET_DEADLINE_HOURS). --purge-now runs that job here and now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer_id", help="The shop's customer id.")
        parser.add_argument("--purge-now", action="store_true", help="Run the purge job now.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, customer_id: str, **options: Any) -> None:
        customer = Customer.objects.filter(external_id=customer_id).first()
        if customer is None:
            raise CommandError(f"customer_id: no customer {customer_id!r}")
        with acting_as("command:forget_customer"):
            deleted = customer_forget(customer=customer)
        request = ForgetRequest.objects.order_by("-pk").first()
        assert request is not None
        self.stdout.write(
            f"Forgot the customer ({deleted:,} events deleted); forget request #{request.pk}, "
            f"to be applied by {request.deadline_at:%Y-%m-%d %H:%M %Z}."
        )
        if options["purge_now"]:
            job = purge_job_create()
            if job is None:
                raise CommandError("a purge job is already queued or running: it takes this one")
            job = job_run_with_bar(
                job,
                name="privacy purge",
                enqueue=None,
                progress=not options["no_progress"],
                stream=self.stderr,
            )
            applied = job.counts["verify"]["applied_at"]
            self.stdout.write(f"Purge job {job.pk}: applied at {applied}")
