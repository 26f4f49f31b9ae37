"""Maintenance of the event aggregates (``recommender.models.activity``).

Writers of events call in here inside their own transaction: :func:`stats_add_postgres` for
the rows the PostgreSQL bulk insert really inserted, :func:`stats_add` for the portable path,
:func:`stats_remove_customer` when a customer is forgotten, :func:`stats_remove_product_events`
when a product is deleted. :func:`event_stats_rebuild` recounts everything from the events table
(``manage.py rebuild_event_stats``, and the migration that introduced the tables).

Locks (PostgreSQL; no-ops elsewhere, where SQLite serialises writers anyway):

* ``EVENTS_LOCK``: every event-inserting transaction holds it shared, from before it resolves
  customer ids until it commits; forgetting a customer or rebuilding takes it exclusively. The
  events table has no foreign-key constraint (a per-row check cost as much as the insert), so
  this is what keeps an insert from naming a customer that a concurrent forget deletes.
* ``STATS_LOCK``: taken exclusively for the aggregate updates until commit, so that concurrent
  writers update the counters one after the other (no deadlock between their row locks); the
  event insert itself, the expensive part, runs before it, in parallel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from recommender.models import (
    ActiveCustomersDaily,
    ActiveCustomersWeekly,
    CustomerActivity,
    CustomerDay,
    CustomerWeek,
    Event,
    EventDailyCount,
    ProductCountsState,
    ProductEventCount,
)
from recommender.models.activity import event_day, stats_zone, week_start

EVENTS_LOCK = 0x7265637369746501  # "recsite" + 1
STATS_LOCK = 0x7265637369746502

_DAILY = EventDailyCount._meta.db_table
_CUSTOMER_DAY = CustomerDay._meta.db_table
_CUSTOMER_WEEK = CustomerWeek._meta.db_table
_ACTIVE_DAILY = ActiveCustomersDaily._meta.db_table
_ACTIVE_WEEKLY = ActiveCustomersWeekly._meta.db_table
_ACTIVITY = CustomerActivity._meta.db_table
_PRODUCT = ProductEventCount._meta.db_table
_EVENTS = Event._meta.db_table


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def events_lock_shared() -> None:
    """Held by an inserting transaction until it commits (see the module docstring)."""
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [EVENTS_LOCK])


def events_lock_exclusive() -> None:
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVENTS_LOCK])


def _stats_lock() -> None:
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STATS_LOCK])


# PostgreSQL: from the rows just inserted ---------------------------------------------------
def stats_add_postgres(*, inserted_table: str) -> None:
    """Add the rows of ``inserted_table`` (customer_id, product_id, event_type, occurred_at of
    events this transaction inserted) to every aggregate, in one statement."""
    _stats_lock()
    sql = f"""
    WITH d AS (
        SELECT customer_id, product_id, event_type, occurred_at,
               (occurred_at AT TIME ZONE %(tz)s)::date AS day
        FROM {inserted_table}
    ), daily AS (
        INSERT INTO {_DAILY} AS t (day, event_type, events, product_events)
        SELECT day, event_type, count(*), count(product_id) FROM d GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (day, event_type) DO UPDATE
        SET events = t.events + EXCLUDED.events,
            product_events = t.product_events + EXCLUDED.product_events
    ), new_days AS (
        INSERT INTO {_CUSTOMER_DAY} (day, customer_id)
        SELECT DISTINCT day, customer_id FROM d ORDER BY 1, 2
        ON CONFLICT DO NOTHING RETURNING day
    ), active_days AS (
        INSERT INTO {_ACTIVE_DAILY} AS t (day, customers)
        SELECT day, count(*) FROM new_days GROUP BY 1 ORDER BY 1
        ON CONFLICT (day) DO UPDATE SET customers = t.customers + EXCLUDED.customers
    ), new_weeks AS (
        INSERT INTO {_CUSTOMER_WEEK} (week, customer_id)
        SELECT DISTINCT date_trunc('week', day::timestamp)::date, customer_id FROM d
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING RETURNING week
    ), active_weeks AS (
        INSERT INTO {_ACTIVE_WEEKLY} AS t (week, customers)
        SELECT week, count(*) FROM new_weeks GROUP BY 1 ORDER BY 1
        ON CONFLICT (week) DO UPDATE SET customers = t.customers + EXCLUDED.customers
    )
    INSERT INTO {_ACTIVITY} AS t (customer_id, events, last_event_at)
    SELECT customer_id, count(*), max(occurred_at) FROM d GROUP BY 1 ORDER BY 1
    ON CONFLICT (customer_id) DO UPDATE
    SET events = t.events + EXCLUDED.events,
        last_event_at = GREATEST(t.last_event_at, EXCLUDED.last_event_at)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tz": stats_zone()})


# Portable: from Python rows ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StatRow:
    """What the aggregates need of one event."""

    customer_id: int
    product_id: int | None
    event_type: str
    occurred_at: datetime


def stats_add(*, rows: Iterable[StatRow]) -> None:
    """Add events this transaction inserted to every aggregate (any database)."""
    rows = list(rows)
    if not rows:
        return
    _stats_lock()
    zone = ZoneInfo(stats_zone())
    typed: Counter[tuple[date, str]] = Counter()
    with_product: Counter[tuple[date, str]] = Counter()
    pairs: set[tuple[date, int]] = set()
    per_customer: dict[int, tuple[int, datetime]] = {}
    for row in rows:
        day = event_day(row.occurred_at, zone)
        typed[day, row.event_type] += 1
        if row.product_id is not None:
            with_product[day, row.event_type] += 1
        pairs.add((day, row.customer_id))
        count, last = per_customer.get(row.customer_id, (0, row.occurred_at))
        per_customer[row.customer_id] = (count + 1, max(last, row.occurred_at))
    greatest = "GREATEST" if _postgres() else "MAX"
    with connection.cursor() as cursor:
        for (day, kind), n in sorted(typed.items()):
            cursor.execute(
                f"INSERT INTO {_DAILY} AS t (day, event_type, events, product_events) "
                f"VALUES (%s, %s, %s, %s) ON CONFLICT (day, event_type) DO UPDATE "
                f"SET events = t.events + EXCLUDED.events, "
                f"product_events = t.product_events + EXCLUDED.product_events",
                [day, kind, n, with_product[day, kind]],
            )
        new_days: Counter[date] = Counter()
        new_weeks: Counter[date] = Counter()
        for day, customer in sorted(pairs):
            cursor.execute(
                f"INSERT INTO {_CUSTOMER_DAY} (day, customer_id) VALUES (%s, %s) "
                f"ON CONFLICT DO NOTHING",
                [day, customer],
            )
            new_days[day] += cursor.rowcount
        for week, customer in sorted({(week_start(day), customer) for day, customer in pairs}):
            cursor.execute(
                f"INSERT INTO {_CUSTOMER_WEEK} (week, customer_id) VALUES (%s, %s) "
                f"ON CONFLICT DO NOTHING",
                [week, customer],
            )
            new_weeks[week] += cursor.rowcount
        for table, column, counts in (
            (_ACTIVE_DAILY, "day", new_days),
            (_ACTIVE_WEEKLY, "week", new_weeks),
        ):
            for start, n in sorted(counts.items()):
                if n:
                    cursor.execute(
                        f"INSERT INTO {table} AS t ({column}, customers) VALUES (%s, %s) "
                        f"ON CONFLICT ({column}) DO UPDATE "
                        f"SET customers = t.customers + EXCLUDED.customers",
                        [start, n],
                    )
        for customer, (n, last) in sorted(per_customer.items()):
            cursor.execute(
                f"INSERT INTO {_ACTIVITY} AS t (customer_id, events, last_event_at) "
                f"VALUES (%s, %s, %s) ON CONFLICT (customer_id) DO UPDATE "
                f"SET events = t.events + EXCLUDED.events, "
                f"last_event_at = {greatest}(t.last_event_at, EXCLUDED.last_event_at)",
                [customer, n, last],
            )


def stats_remove_customer(*, customer_id: int) -> None:
    """Take every event of this customer out of the aggregates (before they are deleted).

    Runs in the caller's transaction, which must hold ``EVENTS_LOCK`` exclusively (no event of
    the customer may arrive meanwhile). Counters that reach zero are deleted, as a recount
    would have no row for them.
    """
    _stats_lock()
    zone = ZoneInfo(stats_zone())
    typed: Counter[tuple[date, str]] = Counter()
    with_product: Counter[tuple[date, str]] = Counter()
    per_product: Counter[tuple[int, str]] = Counter()
    days: set[date] = set()
    events = Event.objects.filter(customer_id=customer_id).order_by()
    counted_through = _counted_through()
    for pk, product_id, kind, occurred_at in events.values_list(
        "pk", "product_id", "event_type", "occurred_at"
    ).iterator(chunk_size=5000):
        day = event_day(occurred_at, zone)
        typed[day, kind] += 1
        if product_id is not None:
            with_product[day, kind] += 1
            if pk <= counted_through:  # Later ones are not in the product counts yet.
                per_product[product_id, kind] += 1
        days.add(day)
    weeks = {week_start(day) for day in days}
    with connection.cursor() as cursor:
        for (day, kind), n in sorted(typed.items()):
            cursor.execute(
                f"UPDATE {_DAILY} SET events = events - %s, product_events = product_events - %s "
                f"WHERE day = %s AND event_type = %s",
                [n, with_product[day, kind], day, kind],
            )
        for member, table, column, starts in (
            (_CUSTOMER_DAY, _ACTIVE_DAILY, "day", days),
            (_CUSTOMER_WEEK, _ACTIVE_WEEKLY, "week", weeks),
        ):
            for start in sorted(starts):
                cursor.execute(
                    f"DELETE FROM {member} WHERE {column} = %s AND customer_id = %s",
                    [start, customer_id],
                )
                if cursor.rowcount:
                    cursor.execute(
                        f"UPDATE {table} SET customers = customers - 1 WHERE {column} = %s",
                        [start],
                    )
        for (product, kind), n in sorted(per_product.items()):
            cursor.execute(
                f"UPDATE {_PRODUCT} SET events = events - %s "
                f"WHERE product_id = %s AND event_type = %s",
                [n, product, kind],
            )
            cursor.execute(
                f"DELETE FROM {_PRODUCT} WHERE product_id = %s AND event_type = %s AND events <= 0",
                [product, kind],
            )
        cursor.execute(f"DELETE FROM {_DAILY} WHERE events <= 0")
        cursor.execute(f"DELETE FROM {_ACTIVE_DAILY} WHERE customers <= 0")
        cursor.execute(f"DELETE FROM {_ACTIVE_WEEKLY} WHERE customers <= 0")
        cursor.execute(f"DELETE FROM {_ACTIVITY} WHERE customer_id = %s", [customer_id])


def stats_remove_product_events(
    *, product_id: int, rows: Iterable[tuple[int, str, datetime]]
) -> None:
    """Take a deleted product's events out of the aggregates, once they are deleted.

    ``rows`` are ``(customer_id, event_type, occurred_at)`` of every deleted event. Runs in the
    caller's transaction, which must hold ``EVENTS_LOCK`` exclusively. A customer leaves a day's
    or a week's active set only when no event of theirs remains in it; their event count drops
    by what was deleted, and their newest event is looked up again when it was one of these.
    The product's own counts go. Counters that reach zero are deleted, as a recount would have
    no row for them.
    """
    _stats_lock()
    zone = ZoneInfo(stats_zone())
    typed: Counter[tuple[date, str]] = Counter()
    per_customer: dict[int, tuple[int, datetime]] = {}
    days: set[tuple[date, int]] = set()
    for customer, kind, occurred_at in rows:
        day = event_day(occurred_at, zone)
        typed[day, kind] += 1
        days.add((day, customer))
        count, newest = per_customer.get(customer, (0, occurred_at))
        per_customer[customer] = (count + 1, max(newest, occurred_at))
    weeks = {(week_start(day), customer) for day, customer in days}
    with connection.cursor() as cursor:
        for (day, kind), n in sorted(typed.items()):  # Every one of them had the product.
            cursor.execute(
                f"UPDATE {_DAILY} SET events = events - %s, product_events = product_events - %s "
                f"WHERE day = %s AND event_type = %s",
                [n, n, day, kind],
            )
        for member, table, column, pairs, length in (
            (_CUSTOMER_DAY, _ACTIVE_DAILY, "day", days, timedelta(days=1)),
            (_CUSTOMER_WEEK, _ACTIVE_WEEKLY, "week", weeks, timedelta(days=7)),
        ):
            for start, customer in sorted(pairs):
                begins = datetime.combine(start, time.min, tzinfo=zone)
                ends = datetime.combine(start + length, time.min, tzinfo=zone)
                remaining = Event.objects.filter(
                    customer_id=customer, occurred_at__gte=begins, occurred_at__lt=ends
                ).exists()
                if remaining:
                    continue
                cursor.execute(
                    f"DELETE FROM {member} WHERE {column} = %s AND customer_id = %s",
                    [start, customer],
                )
                if cursor.rowcount:
                    cursor.execute(
                        f"UPDATE {table} SET customers = customers - 1 WHERE {column} = %s",
                        [start],
                    )
        for customer, (n, newest) in sorted(per_customer.items()):
            cursor.execute(
                f"UPDATE {_ACTIVITY} SET events = events - %s WHERE customer_id = %s",
                [n, customer],
            )
            remaining_newest: datetime | None = (
                Event.objects.filter(customer_id=customer)
                .order_by("-occurred_at")
                .values_list("occurred_at", flat=True)
                .first()
            )
            if remaining_newest is None:
                cursor.execute(f"DELETE FROM {_ACTIVITY} WHERE customer_id = %s", [customer])
            elif remaining_newest < newest:
                cursor.execute(
                    f"UPDATE {_ACTIVITY} SET last_event_at = %s WHERE customer_id = %s",
                    [remaining_newest, customer],
                )
        cursor.execute(f"DELETE FROM {_PRODUCT} WHERE product_id = %s", [product_id])
        cursor.execute(f"DELETE FROM {_DAILY} WHERE events <= 0")
        cursor.execute(f"DELETE FROM {_ACTIVE_DAILY} WHERE customers <= 0")
        cursor.execute(f"DELETE FROM {_ACTIVE_WEEKLY} WHERE customers <= 0")


# Product counts ----------------------------------------------------------------------------
def _counted_through() -> int:
    state = ProductCountsState.objects.filter(pk=1).first()
    return state.counted_through if state is not None else 0


@dataclass(frozen=True, slots=True)
class ProductCountsRefresh:
    events: int  # Events counted by this refresh.
    counted_through: int


@transaction.atomic
def product_counts_refresh() -> ProductCountsRefresh:
    """Add the events stored since the last refresh to the per-product counts.

    Holds the events lock exclusively: every event id assigned so far is then committed, so
    "ids above the last one counted" is exactly the events not counted yet, and no forget runs
    meanwhile. Ingestion waits for it: milliseconds for ten minutes of live traffic, about a
    minute after a 50-million-event import.
    """
    events_lock_exclusive()
    state, _ = ProductCountsState.objects.select_for_update().get_or_create(pk=1)
    newest = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    counted = 0
    if newest > state.counted_through:
        window = [state.counted_through, newest]
        with connection.cursor() as cursor:
            if _postgres():  # One statement: at 50M events a row per statement took minutes.
                cursor.execute(
                    f"WITH counts AS (SELECT product_id, event_type, count(*) AS n "
                    f"FROM {_EVENTS} WHERE id > %s AND id <= %s AND product_id IS NOT NULL "
                    f"GROUP BY 1, 2), upsert AS (INSERT INTO {_PRODUCT} AS t "
                    f"(product_id, event_type, events) SELECT * FROM counts ORDER BY 1, 2 "
                    f"ON CONFLICT (product_id, event_type) DO UPDATE "
                    f"SET events = t.events + EXCLUDED.events) SELECT sum(n) FROM counts",
                    window,
                )
                counted = int(cursor.fetchone()[0] or 0)
            else:
                rows = (
                    Event.objects.filter(pk__gt=window[0], pk__lte=window[1], product__isnull=False)
                    .order_by()
                    .values_list("product_id", "event_type")
                    .annotate(n=Count("pk"))
                )
                for product, kind, n in sorted(rows):
                    counted += n
                    cursor.execute(
                        f"INSERT INTO {_PRODUCT} AS t (product_id, event_type, events) "
                        f"VALUES (%s, %s, %s) ON CONFLICT (product_id, event_type) DO UPDATE "
                        f"SET events = t.events + EXCLUDED.events",
                        [product, kind, n],
                    )
        state.counted_through = newest
    state.refreshed_at = timezone.now()
    state.save()
    return ProductCountsRefresh(events=counted, counted_through=state.counted_through)


# Rebuild -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RebuildCounts:
    days: int
    customer_days: int
    customer_weeks: int
    customers: int


@transaction.atomic
def event_stats_rebuild() -> RebuildCounts:
    """Recount every aggregate from the events table (replaces what was there).

    Ingestion waits meanwhile (the events lock is held exclusively), so the counts are those of
    one consistent state. On PostgreSQL each table is one INSERT … SELECT over the events
    (minutes at 50 million events); elsewhere the events are streamed through Python.
    """
    events_lock_exclusive()
    tables = (
        _DAILY, _CUSTOMER_DAY, _CUSTOMER_WEEK, _ACTIVE_DAILY, _ACTIVE_WEEKLY, _ACTIVITY, _PRODUCT,
    )  # fmt: skip
    with connection.cursor() as cursor:
        if _postgres():
            cursor.execute("TRUNCATE " + ", ".join(tables))
            _rebuild_postgres(cursor)
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
    newest = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if not _postgres():
        products = (
            Event.objects.filter(product__isnull=False)
            .order_by()
            .values_list("product_id", "event_type")
            .annotate(n=Count("pk"))
        )
        ProductEventCount.objects.bulk_create(
            [ProductEventCount(product_id=p, event_type=k, events=n) for p, k, n in products]
        )
        rows = (
            StatRow(customer, product, kind, at)
            for customer, product, kind, at in Event.objects.order_by()
            .values_list("customer_id", "product_id", "event_type", "occurred_at")
            .iterator(chunk_size=20_000)
        )
        stats_add(rows=rows)
    ProductCountsState.objects.update_or_create(
        pk=1, defaults={"counted_through": newest, "refreshed_at": timezone.now()}
    )
    return RebuildCounts(
        days=EventDailyCount.objects.values("day").distinct().count(),
        customer_days=CustomerDay.objects.count(),
        customer_weeks=CustomerWeek.objects.count(),
        customers=CustomerActivity.objects.count(),
    )


def _rebuild_postgres(cursor: Any) -> None:
    day = "(occurred_at AT TIME ZONE %(tz)s)::date"
    params = {"tz": stats_zone()}
    cursor.execute(
        f"INSERT INTO {_DAILY} (day, event_type, events, product_events) "
        f"SELECT {day}, event_type, count(*), count(product_id) FROM {_EVENTS} GROUP BY 1, 2",
        params,
    )
    cursor.execute(
        f"INSERT INTO {_CUSTOMER_DAY} (day, customer_id) "
        f"SELECT DISTINCT {day}, customer_id FROM {_EVENTS}",
        params,
    )
    cursor.execute(
        f"INSERT INTO {_CUSTOMER_WEEK} (week, customer_id) "
        f"SELECT DISTINCT date_trunc('week', day::timestamp)::date, customer_id "
        f"FROM {_CUSTOMER_DAY}"
    )
    cursor.execute(
        f"INSERT INTO {_ACTIVE_DAILY} (day, customers) "
        f"SELECT day, count(*) FROM {_CUSTOMER_DAY} GROUP BY 1"
    )
    cursor.execute(
        f"INSERT INTO {_ACTIVE_WEEKLY} (week, customers) "
        f"SELECT week, count(*) FROM {_CUSTOMER_WEEK} GROUP BY 1"
    )
    cursor.execute(
        f"INSERT INTO {_ACTIVITY} (customer_id, events, last_event_at) "
        f"SELECT customer_id, count(*), max(occurred_at) FROM {_EVENTS} GROUP BY 1"
    )
    cursor.execute(
        f"INSERT INTO {_PRODUCT} (product_id, event_type, events) "
        f"SELECT product_id, event_type, count(*) FROM {_EVENTS} "
        f"WHERE product_id IS NOT NULL GROUP BY 1, 2"
    )
