"""Rotation's per-request read of a visitor's recent lists is one range of a visitor index on
PostgreSQL: no other visitor's row, no other kind, no sort."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.models import Customer, RecommendationLog
from recommender.selectors.recommendations import visitor_recent_lists

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def _plan(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        # Scans that would beat the index on a small table are turned off, as they lose on a
        # large one.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        try:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}")
            return [row[0].strip() for row in cursor.fetchall()]
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")


def _read(**visitor) -> tuple[list[tuple[float, list[str]]], str]:
    with CaptureQueriesContext(connection) as queries:
        lists = visitor_recent_lists(kind="customer", since=START + timedelta(hours=10), **visitor)
    [query] = queries.captured_queries
    return lists, query["sql"]


@pytest.mark.django_db(transaction=True)
def test_a_visitors_recent_lists_are_read_off_the_visitor_indexes():
    # given: a customer's and a session's lists of two kinds over 30 hours
    mine, other = (
        Customer.objects.create(external_id="c1"),
        Customer.objects.create(external_id="c2"),
    )
    rows = [
        RecommendationLog(kind=kind, customer=customer, session_id=session, product_ids=[f"P{h}"])
        for h in range(30)
        for customer, session in ((mine, ""), (None, "s1"))
        for kind in ("customer", "similar")
    ]
    # and: 2,000 newer lists of another customer and session. Reading the time index backwards
    # and filtering would have to pass them all, so that plan cannot tie with the visitor's.
    rows += [
        RecommendationLog(kind="customer", customer=customer, session_id=session, product_ids=[])
        for _ in range(1000)
        for customer, session in ((other, ""), (None, "s2"))
    ]
    RecommendationLog.objects.bulk_create(rows)
    for i, row in enumerate(RecommendationLog.objects.order_by("id")):
        RecommendationLog.objects.filter(pk=row.pk).update(
            created_at=START + timedelta(hours=i // 4 if i < 120 else 40)
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) recommender_recommendationlog")

    # when: a customer's and a session's lists since hour 10 are read
    by_customer, customer_sql = _read(customer=mine)
    by_session, session_sql = _read(session_id="s1")

    # then: each is the visitor's own lists of that kind, newest first, from one index range
    expected = [((START + timedelta(hours=h)).timestamp(), [f"P{h}"]) for h in range(29, 9, -1)]
    assert by_customer == by_session == expected
    assert _plan(customer_sql)[:3] == [
        "Limit (actual rows=20 loops=1)",  # No sort: the index is in the order read.
        "->  Index Scan using reclog_customer_recent on recommender_recommendationlog"
        " (actual rows=20 loops=1)",
        f"Index Cond: ((customer_id = {mine.pk}) AND ((kind)::text = 'customer'::text) AND "
        "(created_at >= '2026-01-01 10:00:00+00'::timestamp with time zone))",
    ]
    assert _plan(session_sql)[1] == (
        "->  Index Scan using reclog_session_recent on recommender_recommendationlog"
        " (actual rows=20 loops=1)"
    )
