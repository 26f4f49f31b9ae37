"""Retention: events and served-list logs older than a configurable age are deleted.

``RECSITE_EVENT_RETENTION_DAYS`` and ``RECSITE_LOG_RETENTION_DAYS`` (0: keep for ever, the
default). The aggregates the product needs stay as they are: the dashboard's daily counts, the
customers' activity counts and the products' popularity counts are not reduced (a deleted event
is still counted), and the next refit of the engine forgets the events themselves. Deletion
runs in batches along the time indexes, one short transaction each.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recommender.models import Event, RecommendationLog

from .audit import audit_record

logger = logging.getLogger(__name__)

BATCH = 10_000


@dataclass
class RetentionReport:
    events_deleted: int = 0
    logs_deleted: int = 0
    events_before: str | None = None
    logs_before: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _delete_before(model: Any, column: str, cutoff: datetime) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            pks = list(
                model.objects.filter(**{f"{column}__lt": cutoff})
                .order_by(column, "id")
                .values_list("pk", flat=True)[:BATCH]
            )
            if not pks:
                return deleted
            n, _ = model.objects.filter(pk__in=pks).delete()
            deleted += n


def retention_sweep(*, now: datetime | None = None) -> RetentionReport:
    now = now or timezone.now()
    report = RetentionReport()
    if settings.RECSITE_EVENT_RETENTION_DAYS > 0:
        cutoff = now - timedelta(days=settings.RECSITE_EVENT_RETENTION_DAYS)
        report.events_before = cutoff.isoformat()
        report.events_deleted = _delete_before(Event, "occurred_at", cutoff)
    if settings.RECSITE_LOG_RETENTION_DAYS > 0:
        cutoff = now - timedelta(days=settings.RECSITE_LOG_RETENTION_DAYS)
        report.logs_before = cutoff.isoformat()
        report.logs_deleted = _delete_before(RecommendationLog, "created_at", cutoff)
    if report.events_deleted or report.logs_deleted:
        audit_record(action="retention.sweep", target="events", detail=report.as_dict())
        logger.info(
            "Retention: %d events, %d served-list logs deleted",
            report.events_deleted,
            report.logs_deleted,
        )
    return report
