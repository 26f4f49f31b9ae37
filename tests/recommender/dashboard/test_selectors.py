"""The overview's time series, read from the maintained event aggregates."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.models import Customer, Product
from recommender.selectors import dashboard as selectors
from recommender.services.activity import product_counts_refresh
from tests.recommender.shop import add_event

pytestmark = pytest.mark.django_db

SUNDAY_NIGHT = datetime(2024, 5, 5, 23, 30, tzinfo=UTC)
MONDAY_MORNING = datetime(2024, 5, 6, 0, 10, tzinfo=UTC)


@pytest.fixture
def two_weeks():
    Product.objects.create(external_id="P1", title="Mug")
    a = Customer.objects.create(external_id="A")
    b = Customer.objects.create(external_id="B")
    add_event(a, "P1", event_type="view", at=SUNDAY_NIGHT)
    add_event(b, "P1", event_type="view", at=SUNDAY_NIGHT)
    add_event(a, "P1", event_type="purchase", at=MONDAY_MORNING)


def series():
    last = MONDAY_MORNING
    return (
        selectors.events_per_day_by_type(last_event_at=last),
        selectors.active_customers_per_day(last_event_at=last),
        selectors.active_customers_per_week(last_event_at=last),
    )


def test_days_and_weeks_are_cut_at_midnight_and_monday(two_weeks):
    per_day, active_day, active_week = series()

    assert [(r.day, r.key, r.count) for r in per_day] == [
        (date(2024, 5, 5), "view", 2),
        (date(2024, 5, 6), "purchase", 1),
    ]
    assert active_day == [(date(2024, 5, 5), 2), (date(2024, 5, 6), 1)]
    assert active_week == [(date(2024, 4, 29), 2), (date(2024, 5, 6), 1)]


def test_the_series_read_the_aggregates_not_the_events(two_weeks):
    # when
    with CaptureQueriesContext(connection) as queries:
        stats = selectors.catalogue_stats()
        overview = selectors.overview_series(stats=stats)
    # then: the events table is read once, for its newest and oldest event (the time index)
    event_reads = [q["sql"] for q in queries if '"recommender_event"' in q["sql"]]
    assert len(event_reads) == 1
    assert "MIN(" in event_reads[0]
    assert "MAX(" in event_reads[0]
    assert stats.events == 3
    assert (overview.events_per_day, overview.active_per_day, overview.active_per_week) == series()


def test_windows_end_on_the_newest_events_day(two_weeks):
    # when: a one-day window and a one-week window
    last = MONDAY_MORNING
    # then
    assert selectors.active_customers_per_day(last_event_at=last, days=1) == [(date(2024, 5, 6), 1)]
    assert selectors.active_customers_per_week(last_event_at=last, weeks=1) == [
        (date(2024, 5, 6), 1)
    ]
    assert selectors.events_per_day_by_type(last_event_at=None) == []


def test_product_event_counts_come_from_the_aggregate(two_weeks):
    # given: the counts as of the last refresh (the beat schedule runs it every 10 minutes)
    product_counts_refresh()
    # when
    with CaptureQueriesContext(connection) as queries:
        counts = selectors.product_event_counts(product=Product.objects.get(external_id="P1"))
    # then
    assert counts == {"purchase": 1, "view": 2}
    assert not [q for q in queries if '"recommender_event"' in q["sql"]]
