"""Reads of the social app: a customer's network as the engine's social source sees it (bounded),
the whole graph for the offline evaluation, and what the inspector's panel shows."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from recommender.caching import AsOf, Reloading
from recommender.evaluation.social import SocialGraph
from recommender.ml.engine import NetworkMember
from recommender.ml.engine.social import MAX_DIRECT, MAX_MEMBER_EVENTS, MAX_SECOND_HOP
from recommender.models import Customer, Event

from . import metrics
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
    """Called after edges are written: the next read in this process checks again, and reads
    every network afresh."""
    _edges.recheck()
    _member_lists.forget()


# The network cache (per process; RECSITE_SOCIAL_NETWORK_CACHE_SECONDS, 0 turns it off): each
# customer's members (hop, weight, relation) and each member's newest events, as read at a
# request's clock and reused by the requests up to that many seconds later. A member followed by
# many (the second hop especially) is read once for all of them. Bounded by
# RECSITE_SOCIAL_NETWORK_CACHE_ENTRIES per cache (a full cache starts again empty).
Members = tuple[tuple[int, int, float, str], ...]  # (member, hop, weight, relation)
MemberEvents = tuple[tuple[int, ...], tuple[str, ...], tuple[float, ...]]  # newest first


@dataclass(frozen=True)
class _HeldMembers:
    """A customer's members as the cache holds them: columns (a quarter of the memory of the
    tuples, about 1.7 KB for 50 members)."""

    ids: np.ndarray  # int64
    hops: np.ndarray  # int8
    weights: np.ndarray  # float64
    relations: tuple[str, ...]  # interned

    @classmethod
    def of(cls, members: Members) -> _HeldMembers:
        return cls(
            np.array([m[0] for m in members], dtype=np.int64),
            np.array([m[1] for m in members], dtype=np.int8),
            np.array([m[2] for m in members], dtype=np.float64),
            tuple(sys.intern(m[3]) for m in members),
        )

    def members(self) -> Members:
        return tuple(
            zip(
                self.ids.tolist(),
                self.hops.tolist(),
                self.weights.tolist(),
                self.relations,
                strict=True,
            )
        )


_member_lists: AsOf[int, _HeldMembers] = AsOf(
    lambda: settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS,
    max_entries=settings.RECSITE_SOCIAL_NETWORK_CACHE_ENTRIES,
)
_member_events: AsOf[int, MemberEvents] = AsOf(
    lambda: settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS,
    max_entries=settings.RECSITE_SOCIAL_NETWORK_CACHE_ENTRIES,
)


def network_cache_forget() -> None:
    """Drop this process's cached networks (a customer was forgotten here)."""
    _member_lists.forget()
    _member_events.forget()


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


# The network read on PostgreSQL: the customer's strongest edges, their members' strongest edges
# (the second hop), and (``_NETWORK_SQL``) each member's newest events (LATERAL reads of the
# covering (customer, -occurred_at) index), in one statement. The same choices as
# ``network_members`` and ``_recent_events``, tie-breaks included (types compared in code-point
# order: COLLATE "C"). ``_MEMBERS_SQL`` is the members alone (the cached read, below).
_MEMBER_CTES = """
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
"""
_NETWORK_SQL = (
    _MEMBER_CTES
    + """
SELECT m.member, m.hop, m.weight, m.relation, e.product_id, e.event_type,
    EXTRACT(EPOCH FROM e.occurred_at)::float8
FROM members AS m LEFT JOIN LATERAL (
    SELECT product_id, event_type, occurred_at FROM {event}
    WHERE customer_id = m.member AND occurred_at <= %(before)s
    ORDER BY occurred_at DESC LIMIT %(max_events)s
) AS e ON true
"""
)
_MEMBERS_SQL = _MEMBER_CTES + "SELECT member, hop, weight, relation FROM members\n"


def _network_params(customer_id: int, now: float) -> dict[str, int | datetime]:
    return {
        "customer": customer_id,
        "max_direct": MAX_DIRECT,
        "max_second": MAX_SECOND_HOP,
        "max_events": MAX_MEMBER_EVENTS,
        "before": datetime.fromtimestamp(now, tz=UTC),
    }


def _ordered(members: Iterable[tuple[int, int, float, str]]) -> list[tuple[int, int, float, str]]:
    """Members in network order: the direct ones, then the second hop, strongest first."""
    return sorted(members, key=lambda m: (m[1], -m[2], m[0]))


def _network_one_statement(
    customer_id: int, *, now: float
) -> tuple[list[tuple[int, int, float, str]], dict[int, list[tuple[int, str, float]]]]:
    """``network_members`` and ``_recent_events`` of them in one round trip (PostgreSQL)."""
    sql = _NETWORK_SQL.format(relationship=Relationship._meta.db_table, event=Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, _network_params(customer_id, now))
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
    return _ordered(members.values()), events


def _network_per_query(
    customer_id: int, *, now: float
) -> tuple[list[tuple[int, int, float, str]], dict[int, list[tuple[int, str, float]]]]:
    """The same read as three queries (the edges, the second hop, the events; on other
    databases than PostgreSQL the events are one query per member)."""
    members = network_members(customer_id)
    if not members:
        return [], {}
    return members, _recent_events([m for m, _, _, _ in members], before=now)


def _members_read(customer_id: int, *, now: float) -> Members:
    """The customer's members alone (one statement on PostgreSQL)."""
    if connection.vendor != "postgresql":
        return tuple(network_members(customer_id))
    sql = _MEMBERS_SQL.format(relationship=Relationship._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, _network_params(customer_id, now))
        rows = cursor.fetchall()
    return tuple(_ordered((int(m), int(h), float(w), str(k)) for m, h, w, k in rows))


def _columns(events: Sequence[tuple[int, str, float]]) -> MemberEvents:
    """A member's events as three columns (event types interned: a few strings, shared by every
    cached entry)."""
    return (
        tuple(e[0] for e in events),
        tuple(sys.intern(e[1]) for e in events),
        tuple(e[2] for e in events),
    )


def _network_cached(customer_id: int, *, now: float) -> tuple[Members, dict[int, MemberEvents]]:
    """The network through this process's cache: the members held for the customer, else read;
    the events held for each member, the others read in one statement and held."""
    held_members = _member_lists.get(customer_id, now)
    if held_members is None:
        members = _members_read(customer_id, now=now)
        _member_lists.put(customer_id, _HeldMembers.of(members), now)
        metrics.MEMBERS_MISS.inc()
    else:
        members = held_members.members()
        metrics.MEMBERS_HIT.inc()
    held, missing = _member_events.get_many((m[0] for m in members), now)
    metrics.EVENTS_HIT.inc(len(held))
    if missing:
        metrics.EVENTS_MISS.inc(len(missing))
        for member, events in _recent_events(missing, before=now).items():
            held[member] = _columns(events)
            _member_events.put(member, held[member], now)
    return members, held


def _network_uncached(customer_id: int, *, now: float) -> tuple[Members, dict[int, MemberEvents]]:
    read = _network_one_statement if connection.vendor == "postgresql" else _network_per_query
    members, events = read(customer_id, now=now)
    return tuple(members), {m: _columns(rows) for m, rows in events.items()}


def customer_network(*, customer_id: int, now: float) -> tuple[NetworkMember, ...]:
    """The customer's network with each member's newest events up to ``now``: what the social
    source reads per request (at most ``MAX_DIRECT`` + ``MAX_SECOND_HOP`` members and
    ``MAX_MEMBER_EVENTS`` events each). Without the cache, one statement on PostgreSQL; with
    it (``RECSITE_SOCIAL_NETWORK_CACHE_SECONDS``), the members and events read by this process
    for a clock at most that many seconds earlier, and a read of the rest. Names only with
    ``RECSITE_SOCIAL_REASON_NAMES`` (one more query, never cached)."""
    if not relationships_exist():
        return ()
    read = _network_cached if _member_lists.enabled() else _network_uncached
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
            product_ids=events[member][0],
            event_types=events[member][1],
            timestamps=events[member][2],
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
