"""Aggregates of the events, maintained at ingestion, read by the dashboard and the refresh plan.

Every write of events (``recommender.services.ingestion``: the batch API and the file imports)
updates these tables in the same transaction, for the events it really inserted (duplicates
count nowhere), and ``customer_forget`` takes a forgotten customer's events back out, so they
always equal a recount from the events table (``manage.py rebuild_event_stats`` recounts them,
``recommender.services.activity``). A day is a calendar day in ``settings.TIME_ZONE`` and a week
starts on Monday; after a change of time zone, rebuild.

Distinct customers are not additive (a customer active on Monday and Tuesday is one active
customer of that week), so the daily and weekly distinct counts are each kept exactly with a
membership table of (period, customer) pairs: a pair inserted for the first time adds one to
its period's count. Their keys lead with the period, so events arriving in time order touch
only the newest pages of those tables.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models

from .customers import Customer


def stats_zone() -> str:
    """The time zone whose calendar days the aggregates count in."""
    return str(settings.TIME_ZONE)


def event_day(moment: datetime, zone: ZoneInfo | None = None) -> date:
    """The calendar day of an event in the aggregates' time zone."""
    return moment.astimezone(zone or ZoneInfo(stats_zone())).date()


def week_start(day: date) -> date:
    """The Monday of the day's week."""
    return day - timedelta(days=day.weekday())


class EventDailyCount(models.Model):
    """Events per calendar day and event type."""

    pk = models.CompositePrimaryKey("day", "event_type")
    day = models.DateField()
    event_type = models.CharField(max_length=32)
    events = models.BigIntegerField(default=0)
    # Of them, events with a product (a search may have none); the refresh plan compares the
    # total with the events the engine was fitted on.
    product_events = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day} {self.event_type}: {self.events}"


class CustomerDay(models.Model):
    """A customer had at least one event on this day (membership for the distinct counts)."""

    pk = models.CompositePrimaryKey("day", "customer_id")
    day = models.DateField()
    # A plain column, not a foreign key: the ORM's cascade would look the customer's rows up
    # by a column that leads no index; ``customer_forget`` deletes them by their key instead.
    customer_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.day} {self.customer_id}"


class CustomerWeek(models.Model):
    """A customer had at least one event in the week starting on ``week`` (a Monday)."""

    pk = models.CompositePrimaryKey("week", "customer_id")
    week = models.DateField()
    customer_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.week} {self.customer_id}"


class ActiveCustomersDaily(models.Model):
    """Distinct customers with at least one event, per day."""

    day = models.DateField(primary_key=True)
    customers = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.customers}"


class ActiveCustomersWeekly(models.Model):
    """Distinct customers with at least one event, per week (starting on Monday)."""

    week = models.DateField(primary_key=True)
    customers = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.week}: {self.customers}"


class CustomerActivity(models.Model):
    """A customer's event count and newest event, for the customer list.

    No secondary index on purpose: an update then stays on its page (a HOT update), which keeps
    ingestion fast; ordering a million rows by these columns is a single top-N sort.
    """

    customer = models.OneToOneField(
        Customer,
        primary_key=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="activity",
    )
    events = models.BigIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.events}"


class ProductEventCount(models.Model):
    """Events per product and event type, for the product page (the events table has no
    product index, whose random inserts halved the import rate).

    Not kept by the inserting transactions: updating a few thousand random products per chunk
    cost more than inserting the events. ``product_counts_refresh`` adds the events with ids
    above ``ProductCountsState.counted_through`` (every 10 minutes on the beat schedule), and
    ``customer_forget`` subtracts the counted events it deletes.
    """

    pk = models.CompositePrimaryKey("product_id", "event_type")
    # A plain column: products are never deleted, and the ORM needs no cascade here.
    product_id = models.BigIntegerField()
    event_type = models.CharField(max_length=32)
    events = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.product_id} {self.event_type}: {self.events}"


class ProductCountsState(models.Model):
    """How far :class:`ProductEventCount` has counted: every event with an id up to
    ``counted_through`` (a single row, id 1)."""

    counted_through = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"events counted through id {self.counted_through}"
