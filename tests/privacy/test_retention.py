"""Retention: events and served-list logs past their age are deleted; aggregates stay."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from privacy.models import AuditEntry
from privacy.services.retention import retention_sweep
from privacy.tasks import retention_sweep as retention_task
from recommender.models import (
    CustomerActivity,
    Event,
    EventDailyCount,
    ProductEventCount,
    RecommendationLog,
)

pytestmark = pytest.mark.django_db

# The shop's baskets are on days 0-4 (from 2024-05-01) and 20-22.
NOW = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


def _aggregates():
    return (
        sorted(EventDailyCount.objects.values_list("day", "event_type", "events")),
        sorted(CustomerActivity.objects.values_list("customer_id", "events")),
        sorted(ProductEventCount.objects.values_list("product_id", "event_type", "events")),
    )


def test_events_older_than_the_retention_age_are_deleted_and_aggregates_stay(shop, settings):
    settings.RECSITE_EVENT_RETENTION_DAYS = 20
    settings.RECSITE_LOG_RETENTION_DAYS = 0
    before = _aggregates()
    total = Event.objects.count()
    old = Event.objects.filter(occurred_at__lt=NOW - timedelta(days=20)).count()
    assert (total, old) == (17, 12)  # Days 0-4 are older than 20 days on June 1st.

    report = retention_sweep(now=NOW)

    assert report.as_dict() == {
        "events_deleted": 12, "logs_deleted": 0,
        "events_before": "2024-05-12T09:00:00+00:00", "logs_before": None,
    }  # fmt: skip
    assert Event.objects.count() == 5
    assert not Event.objects.filter(occurred_at__lt=NOW - timedelta(days=20)).exists()
    assert _aggregates() == before  # Popularity and the dashboard's counts stay.
    entry = AuditEntry.objects.get(action="retention.sweep")
    assert (entry.actor, entry.action, entry.detail) == ("system", "retention.sweep",
                                                         report.as_dict())  # fmt: skip


def test_log_retention_is_separate(shop, admin_client_api, settings):
    settings.RECSITE_EVENT_RETENTION_DAYS = 0
    settings.RECSITE_LOG_RETENTION_DAYS = 30
    for customer in ("C1", "C2"):
        admin_client_api.get(f"/api/v1/customers/{customer}/recommendations")
    old, new = RecommendationLog.objects.order_by("id")
    RecommendationLog.objects.filter(pk=old.pk).update(
        created_at=old.created_at - timedelta(days=31)
    )
    events = Event.objects.count()

    out = StringIO()
    call_command("retention_sweep", stdout=out)

    assert list(RecommendationLog.objects.values_list("pk", flat=True)) == [new.pk]
    assert Event.objects.count() == events
    assert out.getvalue().startswith("0 events (before never) and 1 served-list logs (before ")
    assert AuditEntry.objects.get(action="retention.sweep").actor == "command:retention_sweep"


def test_retention_is_off_by_default_and_the_beat_task_deletes_nothing(shop, beat_run):
    events = Event.objects.count()
    beat_run(retention_task)
    assert Event.objects.count() == events
    assert AuditEntry.objects.filter(action="retention.sweep").count() == 0
