"""The fit's reads: every event as numpy columns, through PostgreSQL's binary COPY."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection

from jobs.models import Job
from recommender.models import Customer, Event, Product
from recommender.selectors import training
from recommender.selectors.binary_copy import copy_columns

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgres():
    if connection.vendor != "postgresql":  # scripts/test.sh runs the suite on PostgreSQL.
        pytest.fail("the binary COPY is PostgreSQL's: run these tests on PostgreSQL")


def _events(n: int) -> list[Event]:
    products = [Product.objects.create(external_id=f"P{i}", title=f"p {i}") for i in range(3)]
    customers = [Customer.objects.create(external_id=f"C{i}") for i in range(4)]
    rows = []
    for i in range(n):
        rows.append(
            Event(
                event_id=f"e{i}",
                customer=customers[i % 4],
                product=products[i % 3] if i % 7 else None,  # Searches have no product.
                event_type=("view", "purchase", "click", "search", "gift")[i % 5],
                occurred_at=T0 + timedelta(hours=i // 3),
                quantity=1 + i % 2,
                session_id=f"s{i // 6}" if i % 2 else "",
            )
        )
    return Event.objects.bulk_create(rows)


def test_the_copy_and_the_orm_read_the_same_columns(db, settings):
    settings.RECSITE_EVENT_TYPES = ["view", "click", "add_to_cart", "purchase", "search"]
    _events(60)
    types = training.event_types_known()

    copied = training._collect(training._postgres_chunks(types), types=types, expected=10,
                               progress=None)  # fmt: skip
    orm = training._collect(training._orm_chunks(types), types=types, expected=10, progress=None)

    assert len(copied) == 60 - 9  # The 9 events without a product are not read.
    for name in ("customer", "product", "code", "timestamp", "quantity"):
        assert np.array_equal(getattr(copied, name), getattr(orm, name)), name
    # Baskets are numbered in one read and hashed in the other: the same grouping either way.
    pairs = set(zip(copied.basket.tolist(), orm.basket.tolist(), strict=True))
    assert len(pairs) == len(set(copied.basket.tolist())) == len(set(orm.basket.tolist()))
    # "gift" is not an accepted type any more: its events count as "other".
    assert copied.event_types[-1] == "other"
    assert int((copied.code == len(types) - 1).sum()) == sum(
        1 for i in range(60) if i % 7 and i % 5 == 4
    )


@pytest.mark.django_db(transaction=True)
def test_the_caller_may_use_the_database_between_blocks():
    # A job reports its progress between two blocks: the COPY must not hold the connection.
    events = _events(200)
    seen = []
    for block in copy_columns(
        f"SELECT id::int8 FROM {Event._meta.db_table}", [], [("id", ">i8", np.int64)],
        block_bytes=64,
    ):  # fmt: skip
        seen.append(block["id"])
        Job.objects.count()
    assert len(seen) > 10
    assert sorted(np.concatenate(seen).tolist()) == sorted(e.pk for e in events)


def test_inside_a_transaction_the_copy_sees_its_uncommitted_rows(db):
    events = _events(30)
    blocks = list(
        copy_columns(
            f"SELECT id::int8, quantity::int4 FROM {Event._meta.db_table}",
            [],
            [("id", ">i8", np.int64), ("quantity", ">i4", np.float32)],
            block_bytes=64,
        )
    )
    ids = np.concatenate([b["id"] for b in blocks])
    assert sorted(ids.tolist()) == sorted(e.pk for e in events)
    assert blocks[0]["quantity"].dtype == np.float32


@pytest.mark.parametrize("expected", [3, 40])  # Fewer rows than read (grown), more (trimmed).
def test_columns_come_in_id_order_with_no_spare_room(expected):
    # given two chunks whose rows are out of id order (rows a vacuum or an update moved)
    def chunk(ids: list[int]) -> dict[str, np.ndarray]:
        return {
            "id": np.array(ids, dtype=np.int64),
            "customer": np.array(ids, dtype=np.int64) * 10,
            "product": np.array(ids, dtype=np.int64) + 100,
            "code": np.array([i % 2 for i in ids], dtype=np.int8),
            "timestamp": np.array(ids, dtype=np.float64) / 2,
            "quantity": np.ones(len(ids), dtype=np.float32),
            "basket": np.array(ids, dtype=np.int64) * -1,
        }

    # when they are collected
    columns = training._collect(
        iter([chunk([5, 1, 9]), chunk([2, 7])]),
        types=("view", "purchase"),
        expected=expected,
        progress=None,
    )
    # then every column holds exactly the five rows, in id order
    assert columns.customer.tolist() == [10, 20, 50, 70, 90]
    assert columns.product.tolist() == [101, 102, 105, 107, 109]
    assert columns.code.tolist() == [1, 0, 1, 1, 1]
    assert columns.timestamp.tolist() == [0.5, 1.0, 2.5, 3.5, 4.5]
    assert columns.basket.tolist() == [-1, -2, -5, -7, -9]
    assert columns.quantity.tolist() == [1.0] * 5
