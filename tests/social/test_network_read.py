"""The per-request network read (``social.selectors.customer_network``): one statement on
PostgreSQL, per query elsewhere; both choose the same members, with the same tie-breaks, and
the same events. Uncached (the test settings), an edge or a member's event written since the
last read is in the next one; with the process's network cache on, what it holds serves the
request clocks up to RECSITE_SOCIAL_NETWORK_CACHE_SECONDS after its read, and an edge written
or a customer forgotten in the process empties it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from recommender.models import Customer, Event, Product
from recommender.services.ingestion import customer_forget
from social import selectors
from social.records import parse_relationship
from social.services import relationships_upsert

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NOW = (T0 + timedelta(days=30)).timestamp()


def _edges(*rows: tuple[str, str, str, float]) -> None:
    relationships_upsert(
        records=[
            parse_relationship(
                {"customer_id": s, "target_customer_id": t, "type": k, "weight": w}, now=T0
            )
            for s, t, k, w in rows
        ]
    )


def _event(customer: str, product: str | None, *, minutes: int, kind: str = "purchase") -> None:
    Event.objects.create(
        event_id=f"{customer}-{product}-{minutes}",
        customer=Customer.objects.get(external_id=customer),
        product=Product.objects.get(external_id=product) if product else None,
        event_type=kind,
        occurred_at=T0 + timedelta(minutes=minutes),
        search_query="" if product else "lamps",
    )


def _pk(external_id: str) -> int:
    return Customer.objects.get(external_id=external_id).pk


def _named(members):
    """(member, hop, weight, relation) with external ids, as both reads return them."""
    names = dict(Customer.objects.values_list("pk", "external_id"))
    return [(names[m], hop, w, k) for m, hop, w, k in members]


def _network(customer: str) -> list[tuple[str, int, float, str]]:
    names = dict(Customer.objects.values_list("pk", "external_id"))
    return [
        (names[m.customer_id], m.hop, m.weight, m.relation)
        for m in selectors.customer_network(customer_id=_pk(customer), now=NOW)
    ]


@pytest.fixture
def graph(db, monkeypatch):
    """A's network with the caps at 3 direct edges, 2 second-hop members and 2 events each:
    A follows and trusts B at the same weight, trusts C, and its fourth edge (to X) is cut."""
    for name in ["A", "B", "C", "D", "E", "F", "G", "X"]:  # Primary keys in this order.
        Customer.objects.create(external_id=name)
    monkeypatch.setattr(selectors, "MAX_DIRECT", 3)
    monkeypatch.setattr(selectors, "MAX_SECOND_HOP", 2)
    monkeypatch.setattr(selectors, "MAX_MEMBER_EVENTS", 2)
    selectors._edges.forget()
    _edges(
        ("A", "B", "trusts", 2.0),
        ("A", "B", "follows", 2.0),  # Same weight: "follows" comes first in code-point order.
        ("A", "C", "trusts", 1.5),
        ("A", "X", "follows", 1.0),  # Fourth strongest edge: beyond MAX_DIRECT = 3.
        ("B", "A", "follows", 9.0),  # Back to the customer: not a member.
        ("B", "C", "follows", 9.0),  # A direct member: stays hop 1.
        ("B", "D", "follows", 1.5),  # Path 3.0 via B (follows) ...
        ("C", "D", "follows", 2.0),  # ... and 3.0 via C (trusts): the tie goes to "follows".
        ("C", "E", "follows", 1.0),  # Path 1.5.
        ("C", "F", "follows", 1.0),  # Path 1.5, the same as E: the smaller key goes first.
    )
    for name in ["P1", "P2", "P3"]:
        Product.objects.create(external_id=name, title=name)
    return _pk("A")


@pytest.mark.django_db
def test_both_reads_choose_the_same_members_with_the_same_tie_breaks(graph):
    expected = [
        ("B", 1, 2.0, "follows"),
        ("C", 1, 1.5, "trusts"),
        ("D", 2, 3.0, "follows"),
        ("E", 2, 1.5, "trusts"),  # E before F: equal paths, smaller primary key first.
    ]
    assert _network("A") == expected
    members, _ = selectors._network_per_query(graph, now=NOW)
    assert _named(members) == expected
    assert _named(selectors.network_members(graph)) == expected


@pytest.mark.django_db
def test_each_member_brings_their_newest_events_up_to_now(graph):
    _event("B", "P1", minutes=1)
    _event("B", "P2", minutes=3, kind="view")
    _event("B", "P3", minutes=2)  # Third newest: beyond MAX_MEMBER_EVENTS = 2.
    _event("C", None, minutes=5)  # A search: counts towards the cap, brings no product.
    _event("C", "P3", minutes=4)
    _event("C", "P1", minutes=1)
    _event("D", "P2", minutes=60 * 24 * 40)  # After now: not seen.
    ids = dict(Product.objects.values_list("pk", "external_id"))
    network = selectors.customer_network(customer_id=graph, now=NOW)
    got = {
        m.customer_id: [(ids[p], k, t) for p, k, t in zip(m.product_ids, m.event_types,
                                                          m.timestamps, strict=True)]
        for m in network
    }  # fmt: skip
    at = (T0 + timedelta(minutes=1)).timestamp()
    assert got == {
        _pk("B"): [("P2", "view", at + 120), ("P3", "purchase", at + 60)],
        _pk("C"): [("P3", "purchase", at + 180)],
        _pk("D"): [],
        _pk("E"): [],
    }
    _, per_query = selectors._network_per_query(graph, now=NOW)
    assert {m: [(ids[p], k, t) for p, k, t in rows] for m, rows in per_query.items()} == got


@pytest.mark.django_db
def test_an_edge_or_an_event_written_since_the_last_read_is_in_the_next(graph):
    assert [m[0] for m in _network("A")] == ["B", "C", "D", "E"]
    # A stronger edge (and G's back to A: a friendship is two edges) fills the direct cap
    # with G and B's two edges: C is now reached through B only.
    _edges(("A", "G", "friend", 5.0))
    assert _network("A") == [
        ("G", 1, 5.0, "friend"),
        ("B", 1, 2.0, "follows"),
        ("C", 2, 18.0, "follows"),
        ("D", 2, 3.0, "follows"),
    ]

    _event("G", "P1", minutes=7)
    first = selectors.customer_network(customer_id=graph, now=NOW)[0]
    assert len(first.product_ids) == 1
    _event("G", "P2", minutes=8)
    first = selectors.customer_network(customer_id=graph, now=NOW)[0]
    assert [Product.objects.get(pk=p).external_id for p in first.product_ids] == ["P2", "P1"]


@pytest.mark.django_db
def test_a_customer_without_edges_has_an_empty_network(graph):
    assert selectors.customer_network(customer_id=_pk("E"), now=NOW) == ()
    assert selectors._network_per_query(_pk("E"), now=NOW) == ([], {})


# The network cache (RECSITE_SOCIAL_NETWORK_CACHE_SECONDS) -----------------------------------


@pytest.fixture
def cached(graph, settings):
    """``graph`` with the network cache on for 30 s (and the "any edges?" check held)."""
    settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = 30.0
    settings.RECSITE_SOCIAL_EDGES_RECHECK_SECONDS = 60.0
    selectors.network_cache_forget()
    yield graph
    selectors.network_cache_forget()


def _events_of(network) -> dict[str, list[tuple[str, str, float]]]:
    names = dict(Customer.objects.values_list("pk", "external_id"))
    ids = dict(Product.objects.values_list("pk", "external_id"))
    return {
        names[m.customer_id]: [
            (ids[p], k, t) for p, k, t in zip(m.product_ids, m.event_types, m.timestamps,
                                              strict=True)
        ]
        for m in network
    }  # fmt: skip


@pytest.mark.django_db
def test_the_cache_reads_what_the_uncached_read_does_then_serves_it_without_a_query(
    cached, settings, django_assert_num_queries
):
    _event("B", "P1", minutes=1)
    _event("C", "P3", minutes=4)
    _event("C", None, minutes=5)
    settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = 0.0
    uncached = selectors.customer_network(customer_id=cached, now=NOW)
    settings.RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = 30.0
    # The members, then every member's events (elsewhere than PostgreSQL: the edges, the second
    # hop, then one query per member).
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 2 + 4):
        cold = selectors.customer_network(customer_id=cached, now=NOW)
    with django_assert_num_queries(0):
        warm = selectors.customer_network(customer_id=cached, now=NOW + 30)
    assert cold == uncached
    assert warm == uncached
    assert _events_of(warm)["C"] == [("P3", "purchase", (T0 + timedelta(minutes=4)).timestamp())]


@pytest.mark.django_db
def test_a_cached_network_serves_later_clocks_within_its_seconds_only(cached):
    def products_of_b(now: float) -> list[str]:
        network = selectors.customer_network(customer_id=cached, now=now)
        return [p for p, _, _ in _events_of(network)["B"]]

    _event("B", "P1", minutes=1)
    assert products_of_b(NOW) == ["P1"]
    _event("B", "P2", minutes=2)  # Written elsewhere (no process hears of it).
    assert products_of_b(NOW + 29.5) == ["P1"]
    assert products_of_b(NOW + 30.5) == ["P2", "P1"]  # 30 s after the read: read again.
    # An earlier clock than a held read never uses it (a replayed list sees its own moment).
    assert products_of_b((T0 + timedelta(minutes=1, seconds=30)).timestamp()) == ["P1"]


def _cache_reads() -> dict[tuple[str, str], float]:
    """The network cache's counters (``/metrics``), by (part, result)."""
    return {
        (part, result): REGISTRY.get_sample_value(
            "recsite_social_network_cache_total", {"part": part, "result": result}
        )
        or 0.0
        for part in ("members", "events")
        for result in ("hit", "miss")
    }


@pytest.mark.django_db
def test_a_member_shared_by_two_networks_is_read_once(cached, django_assert_num_queries):
    _edges(("H", "D", "follows", 1.0), ("H", "B", "follows", 1.0))  # H, new: follows B and D.
    selectors.customer_network(customer_id=cached, now=NOW)  # A: B, C, D, E.
    assert selectors.relationships_exist()  # Asked again after the write above.
    h = _pk("H")
    # H's members (B, D, then A and C through B), then A's events (B's, C's and D's are held).
    reads = _cache_reads()
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 2 + 1):
        network = selectors.customer_network(customer_id=h, now=NOW)
    assert [m[0] for m in _named((m.customer_id, m.hop, m.weight, m.relation)
                                 for m in network)] == ["B", "D", "A", "C"]  # fmt: skip
    with django_assert_num_queries(0):
        assert selectors.customer_network(customer_id=h, now=NOW) == network
    after = _cache_reads()
    assert {key: after[key] - reads[key] for key in after} == {
        ("members", "miss"): 1.0,
        ("members", "hit"): 1.0,
        ("events", "miss"): 1.0,  # A's.
        ("events", "hit"): 3.0 + 4.0,  # B's, C's, D's; then all four.
    }


@pytest.mark.django_db
def test_an_edge_written_in_the_process_reaches_the_next_read_at_once(cached):
    assert [m[0] for m in _network("A")] == ["B", "C", "D", "E"]
    _edges(("A", "G", "friend", 5.0))
    assert [m[0] for m in _network("A")] == ["G", "B", "C", "D"]


@pytest.mark.django_db
def test_a_forgotten_member_leaves_the_cached_networks_at_once(cached):
    _event("D", "P2", minutes=3)
    assert [m[0] for m in _network("A")] == ["B", "C", "D", "E"]
    customer_forget(customer=Customer.objects.get(external_id="D"))
    assert [m[0] for m in _network("A")] == ["B", "C", "E", "F"]
    assert "D" not in _events_of(selectors.customer_network(customer_id=cached, now=NOW))
