"""The per-request history read is answered from the covering index alone on PostgreSQL."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from recommender.models import Customer, Event, Product
from recommender.selectors.recommendations import customer_recent_events

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="index-only scans are PostgreSQL's"
)


def _vacuumed_plan(customer_pk: int) -> list[str]:
    """The executed plan of the history read after ``VACUUM (ANALYZE)``, with the scans that would
    beat the index on a small table turned off (they lose on a large one)."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) recommender_event")
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        try:
            cursor.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                "SELECT product_id, event_type, occurred_at, search_query FROM recommender_event "
                "WHERE customer_id = %s ORDER BY occurred_at DESC LIMIT 200",
                [customer_pk],
            )
            return [row[0].strip() for row in cursor.fetchall()]
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")


@pytest.mark.django_db(transaction=True)
def test_the_customer_history_read_is_an_index_only_scan_of_the_covering_index():
    # given: a customer with events
    customer = Customer.objects.create(external_id="c1")
    product = Product.objects.create(external_id="p1", title="Mug")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    Event.objects.bulk_create(
        Event(
            event_id=f"e{i}",
            customer=customer,
            product=product,
            event_type="view",
            occurred_at=start + timedelta(minutes=i),
            search_query="mugs" if i == 2 else "",
        )
        for i in range(3)
    )
    # Another customer's newer events: reading the time index backwards and filtering would
    # have to pass them all, so the plan cannot tie with that one (it did on an idle table).
    other = Customer.objects.create(external_id="c2")
    Event.objects.bulk_create(
        Event(
            event_id=f"o{i}",
            customer=other,
            product=product,
            event_type="view",
            occurred_at=start + timedelta(days=1, minutes=i),
        )
        for i in range(2000)
    )
    # when: the table is vacuumed and the selector's own statement is planned. VACUUM sets a
    # page all-visible only once no snapshot older than its rows is open in the database (a live
    # process of an earlier test may still hold one for a moment), so it is repeated until it has.
    for _ in range(40):
        plan = _vacuumed_plan(customer.pk)
        if "Heap Fetches: 0" in plan:
            break
        time.sleep(0.25)

    # then: no heap page is visited, and the selector reads the events newest first
    assert plan[1] == (
        "->  Index Only Scan using event_customer_history on recommender_event"
        " (actual rows=3 loops=1)"
    )
    assert "Heap Fetches: 0" in plan
    assert customer_recent_events(customer=customer) == [
        (product.pk, "view", (start + timedelta(minutes=m)).timestamp(), q)
        for m, q in ((2, "mugs"), (1, ""), (0, ""))
    ]
