"""Prove that a forgotten customer is gone from every row and artifact (exit status 1 if not)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.services.checks import customer_check


class Command(BaseCommand):
    help = (
        "Check that no row, build or artifact file still holds the customer: their forget "
        "requests, every app's rows, the engine builds and churn models made before, and a "
        "scan of every artifact file and the job history for the id. Exit status 1 when "
        "anything does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer_id", help="The shop's customer id.")

    def handle(self, *args: Any, customer_id: str, **options: Any) -> None:
        report = customer_check(external_id=customer_id)
        for request in report.requests:
            state = (
                f"applied {request.applied_at:%Y-%m-%d %H:%M:%S %Z}"
                if request.applied_at
                else f"pending (deadline {request.deadline_at:%Y-%m-%d %H:%M %Z})"
            )
            asked = f"{request.requested_at:%Y-%m-%d %H:%M:%S %Z}"
            self.stdout.write(
                f"forget request #{request.pk}: requested {asked} by {request.requested_by}, "
                f"{state}"
            )
        self.stdout.write(f"{report.files_scanned} artifact files scanned.")
        for finding in report.findings:
            self.stdout.write(f"HOLDS: {finding}")
        if not report.requests:
            raise CommandError("no forget request for this customer id")
        if report.findings:
            raise CommandError(f"{len(report.findings)} places still hold the customer")
        self.stdout.write("OK: nothing holds the customer.")
