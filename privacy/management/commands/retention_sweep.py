"""Delete events and served-list logs past their retention age now (beat does it daily)."""

from typing import Any

from django.core.management.base import BaseCommand

from privacy.context import acting_as
from privacy.services.retention import retention_sweep


class Command(BaseCommand):
    help = (
        "Delete events older than RECSITE_EVENT_RETENTION_DAYS and served-list logs older than "
        "RECSITE_LOG_RETENTION_DAYS (0: kept for ever). Aggregates stay."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("command:retention_sweep"):
            report = retention_sweep()
        self.stdout.write(
            f"{report.events_deleted:,} events (before {report.events_before or 'never'}) and "
            f"{report.logs_deleted:,} served-list logs (before {report.logs_before or 'never'}) "
            "deleted."
        )
