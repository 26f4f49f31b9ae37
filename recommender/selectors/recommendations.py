"""Reads behind the recommendation engine: a customer's recent events, a visitor's recent lists,
builds, configurations."""

import json
from datetime import datetime
from typing import Any

from django.db import connection

from recommender.ml.engine import EngineConfig
from recommender.models import Customer, Event, RecommendationConfig, RecommendationLog
from recommender.selectors.catalog import customer_get, customer_lookup_sql

# Events of a customer read per request: enough for the interest vectors and the collaborative
# history, bounded so a customer with years of events costs the same as any other.
HISTORY_LIMIT = 200
# A read event: (product id or None for a search, event type, time as epoch seconds, query).
EventRow = tuple[int | None, str, float, str]


# The event time as seconds since the epoch, computed by the database: turning each row's
# timestamp into an aware datetime in the driver took more time than the query itself (about
# 0.5 ms for 200 rows) on the hottest endpoint, and the engine wants seconds anyway.
_EPOCH_SQL = {
    "postgresql": "EXTRACT(EPOCH FROM {column})::float8",
    "sqlite": "((julianday({column}) - 2440587.5) * 86400.0)",
}


def customer_recent_events(
    *, customer: Customer, limit: int = HISTORY_LIMIT, before: datetime | None = None
) -> list[EventRow]:
    """``(product_id, event_type, occurred_at as epoch seconds, search_query)`` of the newest
    events, newest first; with ``before``, of the newest events before that moment (a list
    replayed as of a past visit sees only what had happened by then).

    Ordered by ``-occurred_at`` alone, so PostgreSQL reads the covering ``(customer, -occurred_at)``
    index (``event_customer_history``, index-only) and stops after ``limit`` rows (a tie-breaker
    column would force a sort).
    """
    epoch = _EPOCH_SQL.get(connection.vendor)
    if epoch is None:  # Another database: the ORM's datetimes, converted here.
        events = Event.objects.filter(customer=customer)
        if before is not None:
            events = events.filter(occurred_at__lt=before)
        rows = events.order_by("-occurred_at").values_list(
            "product_id", "event_type", "occurred_at", "search_query"
        )[:limit]
        return [(pid, kind, at.timestamp(), query) for pid, kind, at, query in rows]
    params: list[Any] = [customer.pk]
    until = ""
    if before is not None:
        until = f"AND {connection.ops.quote_name('occurred_at')} < %s "
        params.append(connection.ops.adapt_datetimefield_value(before))
    with connection.cursor() as cursor:
        cursor.execute(_recent_events_sql(epoch, customer="%s", until=until), [*params, limit])
        return [(pid, kind, float(at), query) for pid, kind, at, query in cursor.fetchall()]


def _recent_events_sql(epoch: str, *, customer: str, until: str = "") -> str:
    """The newest events of the customer whose id is the SQL ``customer`` (a placeholder, or a
    column of an outer query), ``until`` ANDed to the filter, at most a ``%s`` parameter of
    them: product, type, time as epoch seconds (``occurred``) and search query."""
    quote = connection.ops.quote_name
    column = quote("occurred_at")
    return (
        f"SELECT {quote('product_id')}, {quote('event_type')}, "
        f"{epoch.format(column=column)} AS {quote('occurred')}, {quote('search_query')} "
        f"FROM {quote(Event._meta.db_table)} WHERE {quote('customer_id')} = {customer} {until}"
        f"ORDER BY {column} DESC LIMIT %s"
    )


def customer_with_history(
    *, external_id: str, limit: int = HISTORY_LIMIT
) -> tuple[Customer, list[EventRow]] | None:
    """The customer with the shop's id ``external_id`` (as :func:`~recommender.selectors.
    catalog.customer_get` finds them) and their newest events (as :func:`customer_recent_events`
    reads them), or None for an unknown customer.

    On PostgreSQL one statement, so one round trip: the customer's row with their events
    gathered into arrays by a lateral subquery over the same covering index. A customer list
    starts with both reads, and on a busy two-core server a round trip costs the request more
    than its query (a core that idled meanwhile wakes for it). Elsewhere, the two reads.
    """
    if connection.vendor != "postgresql":
        customer = customer_get(external_id=external_id)
        if customer is None:
            return None
        return customer, customer_recent_events(customer=customer, limit=limit)
    quote = connection.ops.quote_name
    customer_sql, lookups = customer_lookup_sql(external_id)
    events_sql = _recent_events_sql(_EPOCH_SQL["postgresql"], customer=f"c.{quote('id')}")
    aggregated = ", ".join(
        f"array_agg(e.{quote(column)}) AS {name}"
        for column, name in (("product_id", "products"), ("event_type", "kinds"),
                             ("occurred", "stamps"), ("search_query", "queries"))
    )  # fmt: skip
    # array_agg keeps the order of its sorted subquery: newest first, as customer_recent_events.
    sql = (
        f"SELECT c.*, h.* FROM ({customer_sql}) c "
        f"LEFT JOIN LATERAL (SELECT {aggregated} FROM ({events_sql}) e) h ON TRUE"
    )
    found = list(Customer.objects.raw(sql, [*lookups, limit]))
    if not found:
        return None
    customer = found[0]
    extra = customer.__dict__
    products = extra.pop("products")
    if products is None:  # No events.
        return customer, []
    arrays = (products, extra.pop("kinds"), extra.pop("stamps"), extra.pop("queries"))
    return customer, list(zip(*arrays, strict=True))


# A visitor's served lists read per request by rotation: the newest this many within its window,
# whatever the window, so a visitor who was shown thousands of lists costs the same as any other.
ROTATION_MAX_LISTS = 50


def visitor_recent_lists(
    *,
    kind: str,
    since: datetime,
    until: datetime | None = None,
    customer: Customer | None = None,
    session_id: str = "",
    limit: int = ROTATION_MAX_LISTS,
    replayed: bool = False,
) -> list[tuple[float, list[str]]]:
    """``(served at as epoch seconds, product ids)`` of the newest ``limit`` lists of ``kind``
    served to ``customer`` (else to the anonymous ``session_id``) since ``since`` (and, given
    ``until``, no later: the lists as they were at a past moment), newest first; real lists
    only, or with ``replayed`` only the replay simulator's (``RecommendationLog.replayed``).

    One range of the ``reclog_customer_recent`` or ``reclog_session_recent`` index (visitor,
    kind, newest first), stopped after ``limit`` rows: no other visitor's row is read. Raw SQL
    like :func:`customer_recent_events`, with the time as seconds from the database: the ORM's
    datetimes and JSON decoding cost more than the query on the serving path.
    """
    visitor: int | str
    if customer is not None:
        column, visitor = "customer_id", customer.pk
    elif session_id:
        column, visitor = "session_id", session_id
    else:
        return []
    epoch = _EPOCH_SQL.get(connection.vendor)
    if epoch is None:  # Another database: the ORM.
        found = RecommendationLog.objects.filter(
            **{column: visitor, "kind": kind, "replayed": replayed}
        )
        found = found.filter(created_at__gte=since)
        if until is not None:
            found = found.filter(created_at__lte=until)
        rows = found.order_by("-created_at").values_list("created_at", "product_ids")[:limit]
        return [(at.timestamp(), list(ids)) for at, ids in rows]
    quote = connection.ops.quote_name
    created = quote("created_at")
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [visitor, kind, replayed, adapt(since)]
    upper = ""
    if until is not None:
        upper = f" AND {created} <= %s"
        params.append(adapt(until))
    sql = (
        f"SELECT {epoch.format(column=created)}, {quote('product_ids')} "
        f"FROM {quote(RecommendationLog._meta.db_table)} "
        f"WHERE {quote(column)} = %s AND {quote('kind')} = %s AND {quote('replayed')} = %s "
        f"AND {created} >= %s{upper} "
        f"ORDER BY {created} DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [
            (float(at), ids if isinstance(ids, list) else json.loads(ids))
            for at, ids in cursor.fetchall()
        ]


def recommendation_config_list() -> list[RecommendationConfig]:
    return list(RecommendationConfig.objects.select_related("created_by").order_by("-version"))


def engine_config_current() -> EngineConfig:
    """The active recommendation configuration, read only: the engine's defaults (what version 1
    holds) while none is saved. ``recommendation_config_active`` (a service) creates version 1."""
    active = RecommendationConfig.objects.filter(is_active=True).only("config").first()
    return EngineConfig.from_dict(active.config) if active is not None else EngineConfig()
