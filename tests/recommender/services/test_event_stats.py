"""Event aggregates: maintained by every writer, always equal to a recount from the events."""

import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from recommender import tasks
from recommender.ingestion.records import ProductRecord
from recommender.models import (
    ActiveCustomersDaily,
    ActiveCustomersWeekly,
    Customer,
    CustomerActivity,
    CustomerDay,
    CustomerWeek,
    Event,
    EventDailyCount,
    Product,
    ProductEventCount,
)
from recommender.services.activity import (
    StatRow,
    event_stats_rebuild,
    product_counts_refresh,
    stats_add,
)
from recommender.services.imports import events_import_file
from recommender.services.ingestion import (
    CustomerIds,
    customer_forget,
    products_upsert,
)
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db

HEADER = "event_id,customer_id,product_id,event_type,timestamp,quantity,search_query"
# 2024-05-06 is a Monday. c1: Sunday 5th, Monday 6th (twice) and Tuesday 7th; c2: Monday 6th
# and the next Monday 13th; c3: one search without a product on the 7th.
ROWS = [
    "e1,c1,P1,view,2024-05-05T23:30:00Z,1,",
    "e2,c1,P1,purchase,2024-05-06T08:00:00Z,2,",
    "e3,c1,P2,view,2024-05-06T09:00:00Z,1,",
    "e4,c2,P2,view,2024-05-06T10:00:00Z,1,",
    "e5,c1,P2,add_to_cart,2024-05-07T10:00:00Z,1,",
    "e6,c2,P1,purchase,2024-05-13T10:00:00Z,1,",
    "e7,c3,,search,2024-05-07T11:00:00Z,1,red mug",
]


@pytest.fixture
def catalogue():
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])


def _write(path, rows):
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _product_pk(external_id: str) -> int:
    return Product.objects.get(external_id=external_id).pk


def _customer_pk(external_id: str) -> int:
    return Customer.objects.get(external_id=external_id).pk


def stored() -> dict[str, object]:
    """Every aggregate table, as plain comparable values (the product counts after a refresh,
    which adds what ingestion stored since the last one)."""
    product_counts_refresh()
    return {
        "daily": sorted(
            EventDailyCount.objects.values_list("day", "event_type", "events", "product_events")
        ),
        "customer_days": sorted(CustomerDay.objects.values_list("day", "customer_id")),
        "customer_weeks": sorted(CustomerWeek.objects.values_list("week", "customer_id")),
        "active_daily": sorted(ActiveCustomersDaily.objects.values_list("day", "customers")),
        "active_weekly": sorted(ActiveCustomersWeekly.objects.values_list("week", "customers")),
        "activity": sorted(
            CustomerActivity.objects.values_list("customer_id", "events", "last_event_at")
        ),
        "products": sorted(
            ProductEventCount.objects.values_list("product_id", "event_type", "events")
        ),
    }


def recount(zone: str = "UTC") -> dict[str, object]:
    """The same aggregates computed here, in Python, from the events table."""
    tz = ZoneInfo(zone)
    daily: Counter[tuple[date, str]] = Counter()
    with_product: Counter[tuple[date, str]] = Counter()
    days: set[tuple[date, int]] = set()
    activity: dict[int, tuple[int, datetime]] = {}
    products: Counter[tuple[int, str]] = Counter()
    for customer, product, kind, at in Event.objects.values_list(
        "customer_id", "product_id", "event_type", "occurred_at"
    ):
        day = at.astimezone(tz).date()
        daily[day, kind] += 1
        with_product[day, kind] += product is not None
        days.add((day, customer))
        if product is not None:
            products[product, kind] += 1
        n, last = activity.get(customer, (0, at))
        activity[customer] = (n + 1, max(last, at))
    weeks = {(date.fromordinal(d.toordinal() - d.weekday()), c) for d, c in days}
    return {
        "daily": sorted((d, k, n, with_product[d, k]) for (d, k), n in daily.items()),
        "customer_days": sorted(days),
        "customer_weeks": sorted(weeks),
        "active_daily": sorted(Counter(d for d, _ in days).items()),
        "active_weekly": sorted(Counter(w for w, _ in weeks).items()),
        "activity": sorted((c, n, last) for c, (n, last) in activity.items()),
        "products": sorted((p, k, n) for (p, k), n in products.items()),
    }


def test_an_import_counts_exactly_what_it_inserted(tmp_path, catalogue):
    # when
    report = events_import_file(path=_write(tmp_path / "events.csv", ROWS))
    # then
    assert report.events.created == 7
    c1, c2, c3 = (_customer_pk(c) for c in ("c1", "c2", "c3"))
    assert stored() == {
        "daily": [
            (date(2024, 5, 5), "view", 1, 1),
            (date(2024, 5, 6), "purchase", 1, 1),
            (date(2024, 5, 6), "view", 2, 2),
            (date(2024, 5, 7), "add_to_cart", 1, 1),
            (date(2024, 5, 7), "search", 1, 0),
            (date(2024, 5, 13), "purchase", 1, 1),
        ],
        "customer_days": sorted(
            [
                (date(2024, 5, 5), c1),
                (date(2024, 5, 6), c1),
                (date(2024, 5, 6), c2),
                (date(2024, 5, 7), c1),
                (date(2024, 5, 7), c3),
                (date(2024, 5, 13), c2),
            ]
        ),
        "customer_weeks": sorted(
            [
                (date(2024, 4, 29), c1),
                (date(2024, 5, 6), c1),
                (date(2024, 5, 6), c2),
                (date(2024, 5, 6), c3),
                (date(2024, 5, 13), c2),
            ]
        ),
        "active_daily": [
            (date(2024, 5, 5), 1),
            (date(2024, 5, 6), 2),
            (date(2024, 5, 7), 2),
            (date(2024, 5, 13), 1),
        ],
        "active_weekly": [(date(2024, 4, 29), 1), (date(2024, 5, 6), 3), (date(2024, 5, 13), 1)],
        "activity": sorted(
            [
                (c1, 4, datetime.fromisoformat("2024-05-07T10:00:00Z")),
                (c2, 2, datetime.fromisoformat("2024-05-13T10:00:00Z")),
                (c3, 1, datetime.fromisoformat("2024-05-07T11:00:00Z")),
            ]
        ),
        "products": sorted(
            [
                (_product_pk("P1"), "purchase", 2),
                (_product_pk("P1"), "view", 1),
                (_product_pk("P2"), "add_to_cart", 1),
                (_product_pk("P2"), "view", 2),
            ]
        ),
    }
    assert stored() == recount()


def test_replays_and_duplicates_in_the_file_count_nowhere(tmp_path, catalogue):
    # given
    path = _write(tmp_path / "events.csv", ROWS)
    events_import_file(path=path)
    before = stored()
    # when: the same file again, and a file repeating e1 with another customer and day
    replay = events_import_file(path=path)
    again = events_import_file(
        path=_write(tmp_path / "more.csv", [*ROWS[:2], "e1,c9,P1,view,2024-06-01T00:00:00Z,1,"])
    )
    # then
    assert (replay.events.created, replay.events.duplicates) == (0, 7)
    assert (again.events.created, again.events.duplicates) == (0, 3)
    assert stored() == before == recount()


def test_later_imports_add_to_the_same_days_and_weeks(tmp_path, catalogue):
    # given
    events_import_file(path=_write(tmp_path / "a.csv", ROWS[:3]))
    # when: more events on days and weeks already counted, by known and new customers
    events_import_file(path=_write(tmp_path / "b.csv", ROWS[3:]))
    # then
    assert stored() == recount()
    assert sorted(ActiveCustomersWeekly.objects.values_list("week", "customers")) == [
        (date(2024, 4, 29), 1),
        (date(2024, 5, 6), 3),
        (date(2024, 5, 13), 1),
    ]


def test_chunks_split_inside_a_day_count_each_customer_once(tmp_path, catalogue):
    # when: one event per chunk
    events_import_file(path=_write(tmp_path / "events.csv", ROWS), chunk_size=1)
    # then
    assert stored() == recount()
    assert ActiveCustomersDaily.objects.get(day=date(2024, 5, 6)).customers == 2


def test_api_batches_are_counted_and_their_replays_are_not(ingest_client, catalogue):
    # given
    items = [
        {"event_id": "a1", "customer_id": "c1", "product_id": "P1", "event_type": "view",
         "timestamp": "2024-05-06T08:00:00Z"},
        {"event_id": "a2", "customer_id": "c2", "product_id": "P2", "event_type": "purchase",
         "timestamp": "2024-05-06T09:00:00Z"},
    ]  # fmt: skip
    # when
    first = ingest_client.post("/api/v1/events/batch", {"items": items}, format="json")
    second = ingest_client.post("/api/v1/events/batch", {"items": items}, format="json")
    # then
    assert (first.json()["created"], second.json()["duplicates"]) == (2, 2)
    assert sorted(EventDailyCount.objects.values_list("day", "event_type", "events")) == [
        (date(2024, 5, 6), "purchase", 1),
        (date(2024, 5, 6), "view", 1),
    ]
    assert ActiveCustomersDaily.objects.get(day=date(2024, 5, 6)).customers == 2
    assert stored() == recount()


def test_forgetting_a_customer_takes_their_events_out_of_every_count(tmp_path, catalogue):
    # given
    events_import_file(path=_write(tmp_path / "events.csv", ROWS))
    c1 = Customer.objects.get(external_id="c1")
    # when
    deleted = customer_forget(customer=c1)
    # then: nothing of c1 is left, not even as an anonymous count
    assert deleted == 4
    c2, c3 = _customer_pk("c2"), _customer_pk("c3")
    assert stored() == {
        "daily": [
            (date(2024, 5, 6), "view", 1, 1),
            (date(2024, 5, 7), "search", 1, 0),
            (date(2024, 5, 13), "purchase", 1, 1),
        ],
        "customer_days": sorted(
            [(date(2024, 5, 6), c2), (date(2024, 5, 7), c3), (date(2024, 5, 13), c2)]
        ),
        "customer_weeks": sorted(
            [(date(2024, 5, 6), c2), (date(2024, 5, 6), c3), (date(2024, 5, 13), c2)]
        ),
        "active_daily": [(date(2024, 5, 6), 1), (date(2024, 5, 7), 1), (date(2024, 5, 13), 1)],
        "active_weekly": [(date(2024, 5, 6), 2), (date(2024, 5, 13), 1)],
        "activity": sorted(
            [
                (c2, 2, datetime.fromisoformat("2024-05-13T10:00:00Z")),
                (c3, 1, datetime.fromisoformat("2024-05-07T11:00:00Z")),
            ]
        ),
        "products": sorted([(_product_pk("P1"), "purchase", 1), (_product_pk("P2"), "view", 1)]),
    }
    assert stored() == recount()


def test_a_forgotten_customer_who_comes_back_is_a_new_customer(tmp_path, catalogue):
    # given: an import that remembers customer keys across its chunks
    ids = CustomerIds()
    first, created = ids.resolve(["c1"], now=datetime.fromisoformat("2024-05-01T00:00:00Z"))
    old_pk = first["c1"]
    customer_forget(customer=Customer.objects.get(pk=old_pk))
    # when: the same import resolves c1 again
    again, created_again = ids.resolve(["c1"], now=datetime.fromisoformat("2024-05-01T00:00:00Z"))
    # then: a new row, not the deleted key
    assert (created, created_again) == (1, 1)
    assert again["c1"] != old_pk
    assert again["c1"] == _customer_pk("c1")


def test_rebuild_recounts_from_the_events(tmp_path, catalogue):
    # given: aggregates damaged by hand
    events_import_file(path=_write(tmp_path / "events.csv", ROWS))
    expected = stored()
    EventDailyCount.objects.all().delete()
    ActiveCustomersWeekly.objects.update(customers=99)
    CustomerActivity.objects.all().delete()
    ProductEventCount.objects.update(events=7)
    # when
    counts = event_stats_rebuild()
    # then
    assert stored() == expected == recount()
    assert (counts.days, counts.customer_days, counts.customer_weeks, counts.customers) == (
        4,
        6,
        5,
        3,
    )


def test_days_are_calendar_days_of_the_configured_time_zone(tmp_path, catalogue, settings):
    # given: 23:30 UTC on Sunday the 5th is 00:30 on Monday the 6th in London (summer time)
    settings.TIME_ZONE = "Europe/London"
    # when
    events_import_file(path=_write(tmp_path / "events.csv", ROWS[:1]))
    # then
    assert list(EventDailyCount.objects.values_list("day", "events")) == [(date(2024, 5, 6), 1)]
    assert list(ActiveCustomersWeekly.objects.values_list("week", "customers")) == [
        (date(2024, 5, 6), 1)
    ]
    assert stored() == recount("Europe/London")
    event_stats_rebuild()
    assert stored() == recount("Europe/London")


def test_the_portable_writer_counts_like_the_bulk_one(tmp_path, catalogue):
    # given: the PostgreSQL bulk path's result
    events_import_file(path=_write(tmp_path / "events.csv", ROWS))
    expected = stored()
    for model in (EventDailyCount, CustomerDay, CustomerWeek, ActiveCustomersDaily):
        model.objects.all().delete()
    ActiveCustomersWeekly.objects.all().delete()
    CustomerActivity.objects.all().delete()
    # when: the portable path (SQLite's) adds the same events, in two calls (the product counts,
    # kept by product_counts_refresh, stay as they are)
    rows = [
        StatRow(c, p, k, at)
        for c, p, k, at in Event.objects.order_by("event_id").values_list(
            "customer_id", "product_id", "event_type", "occurred_at"
        )
    ]
    stats_add(rows=rows[:3])
    stats_add(rows=rows[3:])
    # then
    assert stored() == expected


SQLITE_SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("import_products", sys.argv[1], no_progress=True)
call_command("import_events", sys.argv[2], no_progress=True)
call_command("import_events", sys.argv[2], no_progress=True)
from recommender.models import Customer
from recommender.services.ingestion import customer_forget
customer_forget(customer=Customer.objects.get(external_id="c2"))
sys.path.insert(0, sys.argv[3])
from tests.recommender.services.test_event_stats import recount, stored
print(json.dumps({"equal": stored() == recount(), "stored": stored()}, default=str))
"""


@pytest.mark.django_db(transaction=False)
def test_sqlite_keeps_the_same_aggregates(tmp_path):
    # given: an embedded installation (no DATABASE_URL: SQLite)
    products = tmp_path / "products.csv"
    products.write_text("product_id,title\nP1,Mug\nP2,Teapot\n", encoding="utf-8")
    events = _write(tmp_path / "events.csv", ROWS)
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": "probe",
        "RECSITE_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    # when: import, replay, forget c2
    out = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT, str(products), str(events), str(REPO_ROOT)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # then
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["equal"] is True
    assert result["stored"]["active_weekly"] == [["2024-04-29", 1], ["2024-05-06", 2]]
    assert result["stored"]["daily"] == [
        ["2024-05-05", "view", 1, 1],
        ["2024-05-06", "purchase", 1, 1],
        ["2024-05-06", "view", 1, 1],
        ["2024-05-07", "add_to_cart", 1, 1],
        ["2024-05-07", "search", 1, 0],
    ]


def test_the_rebuild_command_reports_what_it_counted(tmp_path, catalogue):
    # given
    events_import_file(path=_write(tmp_path / "events.csv", ROWS))
    EventDailyCount.objects.all().delete()
    out = io.StringIO()
    # when
    call_command("rebuild_event_stats", stdout=out)
    # then
    assert stored() == recount()
    assert out.getvalue().split(": ", 1)[1] == (
        "4 days, 6 customer-days, 5 customer-weeks, 3 customers\n"
    )


def test_product_counts_count_each_event_once_around_forgets_and_refreshes(tmp_path, catalogue):
    # given: c1's first three events counted, then e4..e7 stored but not counted yet
    events_import_file(path=_write(tmp_path / "a.csv", ROWS[:3]))
    first = product_counts_refresh()
    events_import_file(path=_write(tmp_path / "b.csv", ROWS[3:]))
    # when: c1 (counted and uncounted events) is forgotten before the next refresh
    customer_forget(customer=Customer.objects.get(external_id="c1"))
    second = product_counts_refresh()
    again = product_counts_refresh()
    # then: only c2's events remain, each counted once
    assert (first.events, second.events, again.events) == (3, 2, 0)
    assert sorted(ProductEventCount.objects.values_list("product_id", "event_type", "events")) == [
        (_product_pk("P1"), "purchase", 1),
        (_product_pk("P2"), "view", 1),
    ]
    assert stored() == recount()


def test_the_beat_entry_counts_what_the_api_stored_since(ingest_client, catalogue, settings):
    # given: events stored through the API (not counted per product by the insert itself)
    item = {"event_id": "a1", "customer_id": "c1", "product_id": "P1", "event_type": "view",
            "timestamp": "2024-05-06T08:00:00Z"}  # fmt: skip
    ingest_client.post("/api/v1/events/batch", {"items": [item]}, format="json")
    assert not ProductEventCount.objects.exists()
    entry = settings.CELERY_BEAT_SCHEDULE["count-product-events"]
    # when: the scheduled task runs
    tasks.product_counts_refresh()
    # then
    assert (entry["task"], entry["schedule"]) == ("recommender.tasks.product_counts_refresh", 600.0)
    assert list(ProductEventCount.objects.values_list("product_id", "event_type", "events")) == [
        (_product_pk("P1"), "view", 1)
    ]
