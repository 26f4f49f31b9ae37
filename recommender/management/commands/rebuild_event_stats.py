"""``manage.py rebuild_event_stats``: recount the event aggregates from the events table."""

import time
from typing import Any

from django.core.management.base import BaseCommand

from recommender.services.activity import event_stats_rebuild


class Command(BaseCommand):
    help = (
        "Recount the event aggregates (events per day and type, active customers per day and "
        "week, per-customer counts) from the events table. Ingestion keeps them current; run "
        "this after changing RECSITE_TIME_ZONE or after deleting events outside recsite. "
        "Imports wait while it runs (minutes at 50 million events)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        counts = event_stats_rebuild()
        self.stdout.write(
            f"event aggregates rebuilt in {time.perf_counter() - started:.1f} s: "
            f"{counts.days:,} days, {counts.customer_days:,} customer-days, "
            f"{counts.customer_weeks:,} customer-weeks, {counts.customers:,} customers"
        )
