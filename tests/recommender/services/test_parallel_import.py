"""An events import on several connections (RECSITE_IMPORT_WRITERS) reports and writes exactly
what one connection does: rows, rejections by line, duplicates, the first occurrence of an id."""

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection

from recommender.ingestion.records import ProductRecord
from recommender.models import Customer, CustomerActivity, Event
from recommender.services.imports import ImportRowError, events_import_file
from recommender.services.imports.importers import _event_writers
from recommender.services.imports.read_ahead import _write_in_parallel
from recommender.services.ingestion import products_upsert

HEADER = "event_id,customer_id,product_id,event_type,timestamp,quantity,value"
# Chunks of three rows: e1 comes back in the second chunk (another customer and product) and in
# the fourth, while those chunks may be written beside the first.
ROWS = [
    "e1,c1,P1,view,2024-05-01T10:00:00Z,1,",  # line 2
    "e2,c2,P2,purchase,2024-05-01T10:05:00Z,2,7.00",
    "e3,c3,P9,view,2024-05-01T10:06:00Z,1,",  # 4: unknown product
    "e1,c9,P2,purchase,2024-05-01T11:00:00Z,1,",  # 5: a duplicate, not the first occurrence
    "e4,c4,P1,view,yesterday,1,",  # 6: bad timestamp
    "e5,c2,P1,click,2024-05-02T09:00:00Z,1,",
    "e6,c5,P2,view,2024-05-02T09:30:00Z,1,",
    "e7,c1,P2,add_to_cart,2024-05-02T09:40:00Z,1,",
    "e8,c6,P1,view,2024-05-03T08:00:00Z,1,",
    "e1,c7,P1,click,2024-05-03T08:10:00Z,1,",  # 11: a duplicate again
    "e9,c7,P2,view,2024-05-03T08:20:00Z,1,",
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writers", [1, 2])
def test_several_writers_import_exactly_what_one_writes(tmp_path, settings, writers):
    settings.RECSITE_IMPORT_WRITERS = writers
    products_upsert(records=[ProductRecord("P1", "Mug"), ProductRecord("P2", "Teapot")])
    path = tmp_path / "events.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")

    report = events_import_file(path=path, chunk_size=3)

    expected_writers = writers if connection.vendor == "postgresql" else 1
    assert _event_writers(strict=False) == expected_writers
    assert (report.rows, report.rejected) == (11, 2)
    assert (report.events.created, report.events.duplicates) == (7, 2)
    assert report.customers.created == 6
    assert report.errors == [
        ImportRowError(4, "product_id", "unknown product 'P9'"),
        ImportRowError(6, "timestamp", "not an ISO 8601 timestamp: 'yesterday'"),
    ]
    events = Event.objects.order_by("event_id").values_list(
        "event_id", "customer__external_id", "product__external_id", "event_type", "occurred_at"
    )
    assert events.first() == ("e1", "c1", "P1", "view", datetime(2024, 5, 1, 10, tzinfo=UTC))
    assert [e[0] for e in events] == ["e1", "e2", "e5", "e6", "e7", "e8", "e9"]
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == [
        "c1",
        "c2",
        "c5",
        "c6",
        "c7",
        "c9",
    ]  # fmt: skip  (c9 came with a duplicate row: created on sight, as with one writer)
    # The aggregates counted each inserted event once, whichever connection wrote it.
    activity = dict(CustomerActivity.objects.values_list("customer__external_id", "events"))
    assert activity == {"c1": 2, "c2": 2, "c5": 1, "c6": 1, "c7": 1}
    # A replay of the whole file: every event a duplicate, nothing written.
    again = events_import_file(path=path, chunk_size=3)
    assert (again.events.created, again.events.duplicates, again.rejected) == (0, 9, 2)
    assert Event.objects.count() == 7


def test_writes_sharing_a_key_run_in_order_and_results_come_in_order():
    # Items 0-11; items 3 and 4 share a key with item 2, item 9 with item 8. Items 2 and 8 take
    # long to write, so without the keys the other writers would start 3, 4 and 9 meanwhile.
    keys = {i: {i} for i in range(12)}
    keys[3] |= {2}
    keys[4] |= {2}
    keys[9] |= {8}
    started: dict[int, float] = {}
    finished: dict[int, float] = {}
    lock = threading.Lock()

    def write(item: int) -> int:
        with lock:
            started[item] = time.monotonic()
        time.sleep(0.08 if item in (2, 8) else 0.005)
        with lock:
            finished[item] = time.monotonic()
        return item * 10

    done: list[tuple[int, int]] = []
    _write_in_parallel(
        iter(range(12)), write, lambda item, result: done.append((item, result)),
        writers=3, keys=lambda item: keys[item],
    )  # fmt: skip

    assert done == [(i, i * 10) for i in range(12)]
    assert started[3] >= finished[2]
    assert started[4] >= finished[2]
    assert started[9] >= finished[8]


def test_a_failed_write_stops_the_import_and_is_raised():
    done: list[int] = []

    def write(item: int) -> int:
        if item == 5:
            raise ValueError("item 5 cannot be written")
        return item

    with pytest.raises(ValueError, match="item 5 cannot be written"):
        _write_in_parallel(
            iter(range(100)), write, lambda item, result: done.append(item),
            writers=2, keys=lambda item: {item},
        )  # fmt: skip

    # Everything before the failure was reported in order; nothing after it.
    assert done == [0, 1, 2, 3, 4]
