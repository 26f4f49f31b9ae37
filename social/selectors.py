"""Reads of the social app: a customer's network as the engine's social source sees it (bounded),
the whole graph for the offline evaluation, and what the inspector's panel shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from recommender.caching import Reloading
from recommender.evaluation.social import SocialGraph
from recommender.ml.engine import NetworkMember
from recommender.ml.engine.social import MAX_DIRECT, MAX_MEMBER_EVENTS, MAX_SECOND_HOP
from recommender.models import Customer, Event

from .models import Relationship

# The attribute of a customer that holds the name reasons may show (when the shop enables it).
NAME_ATTRIBUTE = "name"
# Whether the shop has any relationship, per process, checked again every
# RECSITE_SOCIAL_EDGES_RECHECK_SECONDS while there is none: most shops have none, and the
# network read (a windowed query) then costs 1-2 ms a request for nothing. Once true it stays.
_edges: Reloading[str, bool] = Reloading(
    lambda: settings.RECSITE_SOCIAL_EDGES_RECHECK_SECONDS, max_entries=1
)


def relationships_exist() -> bool:
    """Whether any relationship is stored, as of at most ``RECSITE_SOCIAL_EDGES_RECHECK_SECONDS``
    ago (at the next read after a write in this process: ``relationships_seen``)."""
    return bool(_edges.get("any", lambda held: held or Relationship.objects.exists()))


def relationships_seen() -> None:
    """Called after edges are written: the next read in this process checks again."""
    _edges.recheck()


def _direct_edges(customer_ids: Sequence[int]) -> list[tuple[int, int, float, str]]:
    """(source, target, weight, type) of each customer's ``MAX_DIRECT`` strongest out-edges
    (ties: the smaller target, then the type)."""
    if not customer_ids:
        return []
    ranked = (
        Relationship.objects.filter(source_id__in=list(customer_ids))
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("source_id")],
                order_by=[F("weight").desc(), F("target_id"), F("type")],
            )
        )
        .filter(place__lte=MAX_DIRECT)
        .values_list("source_id", "target_id", "weight", "type")
    )
    return [(int(s), int(t), float(w), str(k)) for s, t, w, k in ranked]


def _stronger(candidate: tuple[float, str], held: tuple[float, str] | None) -> bool:
    """Whether a path (weight, relation) beats the one held for the same member: the heavier,
    on a tie the relation first in code-point order (so the result never depends on the order
    the database returns rows in; the one-statement read orders the same way)."""
    return held is None or (-candidate[0], candidate[1]) < (-held[0], held[1])


def network_members(customer_id: int) -> list[tuple[int, int, float, str]]:
    """(member, hop, weight, relation) of the customer's network: their ``MAX_DIRECT``
    strongest edges (a member reached by two types keeps the strongest), then the
    ``MAX_SECOND_HOP`` strongest members of their members (path weight: the product of both
    edges'; the relation: the customer's own edge on the path)."""
    direct: dict[int, tuple[float, str]] = {}
    for _, target, weight, kind in _direct_edges([customer_id]):
        if _stronger((weight, kind), direct.get(target)):
            direct[target] = (weight, kind)
    second: dict[int, tuple[float, str]] = {}
    for source, target, weight, _ in _direct_edges(sorted(direct)):
        if target == customer_id or target in direct:
            continue
        path = (direct[source][0] * weight, direct[source][1])
        if _stronger(path, second.get(target)):
            second[target] = path
    ranked = sorted(second.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_SECOND_HOP]
    members = [
        (m, 1, w, k) for m, (w, k) in sorted(direct.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    return members + [(m, 2, w, k) for m, (w, k) in ranked]


def _recent_events(
    customer_ids: Sequence[int], *, before: float
) -> dict[int, list[tuple[int, str, float]]]:
    """Each customer's ``MAX_MEMBER_EVENTS`` newest product events up to ``before`` (epoch
    seconds), newest first: one index range read per customer (the covering history index)."""
    out: dict[int, list[tuple[int, str, float]]] = {c: [] for c in customer_ids}
    if not customer_ids:
        return out
    moment = datetime.fromtimestamp(before, tz=UTC)
    if connection.vendor == "postgresql":
        table = Event._meta.db_table
        sql = (
            "SELECT m.id, e.product_id, e.event_type, EXTRACT(EPOCH FROM e.occurred_at)::float8 "
            "FROM unnest(%s::bigint[]) AS m(id) CROSS JOIN LATERAL ("
            f"  SELECT product_id, event_type, occurred_at FROM {table} "
            "  WHERE customer_id = m.id AND occurred_at <= %s "
            "  ORDER BY occurred_at DESC LIMIT %s"
            ") AS e WHERE e.product_id IS NOT NULL"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(customer_ids), moment, MAX_MEMBER_EVENTS])
            for member, product, kind, at in cursor.fetchall():
                out[int(member)].append((int(product), str(kind), float(at)))
        return out
    for member in customer_ids:  # Other databases: one query per member.
        rows = (
            Event.objects.filter(customer_id=member, occurred_at__lte=moment)
            .order_by("-occurred_at")
            .values_list("product_id", "event_type", "occurred_at")[:MAX_MEMBER_EVENTS]
        )
        out[member] = [(int(p), k, at.timestamp()) for p, k, at in rows if p is not None]
    return out


# The whole network read in one statement on PostgreSQL: the customer's strongest edges, their
# members' strongest edges (the second hop), and each member's newest events (LATERAL reads of
# the covering (customer, -occurred_at) index). The same choices as ``network_members`` and
# ``_recent_events``, tie-breaks included (types compared in code-point order: COLLATE "C").
_NETWORK_SQL = """
WITH direct_edges AS (
    SELECT target_id, weight, type FROM {relationship}
    WHERE source_id = %(customer)s
    ORDER BY weight DESC, target_id, type COLLATE "C" LIMIT %(max_direct)s
), direct AS (
    SELECT DISTINCT ON (target_id) target_id AS member, weight, type AS relation
    FROM direct_edges ORDER BY target_id, weight DESC, type COLLATE "C"
), second AS (
    SELECT DISTINCT ON (e.target_id) e.target_id AS member, d.weight * e.weight AS weight,
        d.relation
    FROM direct AS d CROSS JOIN LATERAL (
        SELECT target_id, weight FROM {relationship} WHERE source_id = d.member
        ORDER BY weight DESC, target_id, type COLLATE "C" LIMIT %(max_direct)s
    ) AS e
    WHERE e.target_id <> %(customer)s AND e.target_id NOT IN (SELECT member FROM direct)
    ORDER BY e.target_id, d.weight * e.weight DESC, d.relation COLLATE "C"
), members AS (
    SELECT member, 1 AS hop, weight, relation FROM direct
    UNION ALL
    (SELECT member, 2 AS hop, weight, relation FROM second
     ORDER BY weight DESC, member LIMIT %(max_second)s)
)
SELECT m.member, m.hop, m.weight, m.relation, e.product_id, e.event_type,
    EXTRACT(EPOCH FROM e.occurred_at)::float8
FROM members AS m LEFT JOIN LATERAL (
    SELECT product_id, event_type, occurred_at FROM {event}
    WHERE customer_id = m.member AND occurred_at <= %(before)s
    ORDER BY occurred_at DESC LIMIT %(max_events)s
) AS e ON true
"""


def _network_one_statement(
    customer_id: int, *, now: float
) -> tuple[list[tuple[int, int, float, str]], dict[int, list[tuple[int, str, float]]]]:
    """``network_members`` and ``_recent_events`` of them in one round trip (PostgreSQL)."""
    sql = _NETWORK_SQL.format(relationship=Relationship._meta.db_table, event=Event._meta.db_table)
    params: dict[str, int | datetime] = {
        "customer": customer_id,
        "max_direct": MAX_DIRECT,
        "max_second": MAX_SECOND_HOP,
        "max_events": MAX_MEMBER_EVENTS,
        "before": datetime.fromtimestamp(now, tz=UTC),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    members: dict[int, tuple[int, int, float, str]] = {}
    events: dict[int, list[tuple[int, str, float]]] = {}
    for member, hop, weight, relation, product, kind, at in rows:
        member = int(member)
        if member not in members:
            members[member] = (member, int(hop), float(weight), str(relation))
            events[member] = []
        if product is not None:
            events[member].append((int(product), str(kind), float(at)))
    for held in events.values():  # Newest first (stable: the index's order on a tie).
        held.sort(key=lambda e: -e[2])
    ordered = sorted(members.values(), key=lambda m: (m[1], -m[2], m[0]))
    return ordered, events


def _network_per_query(
    customer_id: int, *, now: float
) -> tuple[list[tuple[int, int, float, str]], dict[int, list[tuple[int, str, float]]]]:
    """The same read as three queries (the edges, the second hop, the events; on other
    databases than PostgreSQL the events are one query per member)."""
    members = network_members(customer_id)
    if not members:
        return [], {}
    return members, _recent_events([m for m, _, _, _ in members], before=now)


def customer_network(*, customer_id: int, now: float) -> tuple[NetworkMember, ...]:
    """The customer's network with each member's newest events up to ``now``: what the social
    source reads per request (at most ``MAX_DIRECT`` + ``MAX_SECOND_HOP`` members and
    ``MAX_MEMBER_EVENTS`` events each), in one statement on PostgreSQL. Names only with
    ``RECSITE_SOCIAL_REASON_NAMES`` (one more query)."""
    if not relationships_exist():
        return ()
    read = _network_one_statement if connection.vendor == "postgresql" else _network_per_query
    members, events = read(customer_id, now=now)
    if not members:
        return ()
    names: dict[int, str] = {}
    if settings.RECSITE_SOCIAL_REASON_NAMES:
        for pk, attributes in Customer.objects.filter(
            pk__in=[m for m, hop, _, _ in members if hop == 1]
        ).values_list("pk", "attributes"):
            name = (attributes or {}).get(NAME_ATTRIBUTE)
            names[pk] = name if isinstance(name, str) else ""
    return tuple(
        NetworkMember(
            customer_id=member,
            hop=hop,
            weight=weight,
            relation=relation,
            product_ids=[e[0] for e in events[member]],
            event_types=[e[1] for e in events[member]],
            timestamps=[e[2] for e in events[member]],
            display_name=names.get(member, ""),
        )
        for member, hop, weight, relation in members
    )


def relationship_graph() -> SocialGraph:
    """Every edge (customer keys), for the offline evaluation."""
    rows = list(Relationship.objects.values_list("source_id", "target_id", "weight", "type"))
    return SocialGraph(
        source=np.array([r[0] for r in rows], dtype=np.int64),
        target=np.array([r[1] for r in rows], dtype=np.int64),
        weight=np.array([r[2] for r in rows], dtype=np.float64),
        relation=[r[3] for r in rows],
    )


@dataclass(frozen=True)
class NetworkPanel:
    """The inspector's network panel for one customer."""

    following: list[tuple[Customer, str, float]]  # (member, type, weight), strongest first
    followers: int  # edges pointing at the customer
    second_hop: int
    bought: list[tuple[int, int]]  # (product pk, how many direct members touched it)


def customer_network_panel(*, customer: Customer, limit: int = 20) -> NetworkPanel:
    """Who the customer follows or trusts (the strongest ``limit``), how many point at them,
    the second hop's size, and what the direct network touched most."""
    members = network_members(customer.pk)
    direct = [m for m in members if m[1] == 1]
    people = Customer.objects.in_bulk([m for m, _, _, _ in direct[:limit]])
    events = _recent_events([m for m, _, _, _ in direct], before=datetime.now(UTC).timestamp())
    touched: dict[int, int] = {}
    for rows in events.values():
        for product in {p for p, _, _ in rows}:
            touched[product] = touched.get(product, 0) + 1
    bought = sorted(touched.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return NetworkPanel(
        following=[(people[m], k, w) for m, _, w, k in direct[:limit] if m in people],
        followers=Relationship.objects.filter(target=customer).count(),
        second_hop=len(members) - len(direct),
        bought=bought,
    )


def relationships_count(*, customer: Customer) -> tuple[int, int]:
    """(out-edges, in-edges) of the customer."""
    return (
        Relationship.objects.filter(source=customer).count(),
        Relationship.objects.filter(Q(target=customer)).count(),
    )
