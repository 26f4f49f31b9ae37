"""The overview's time series: the same days and weeks on SQLite's text path as with Trunc."""

from datetime import UTC, date, datetime

import pytest

from recommender.models import Customer, Product
from recommender.selectors import dashboard as selectors
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


def test_the_sqlite_text_path_agrees_with_django_trunc(two_weeks, monkeypatch):
    fast = series()
    monkeypatch.setattr(selectors, "_sqlite_utc", lambda: False)

    assert series() == fast
