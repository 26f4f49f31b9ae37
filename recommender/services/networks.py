"""The door through which the app that stores relationships (``social``) feeds recommender's
social source, without recommender importing it.

``social`` registers its two readers from its ``AppConfig.ready()``
(:func:`network_readers_register`): a customer's network as of now, bounded (serving, the
inspector, the tuning preview), and the whole relationship graph (the offline evaluation).
Without the app, or before it is ready, every customer has an empty network and the social
source proposes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recommender.evaluation.social import SocialGraph
from recommender.ml.engine import NetworkMember

NetworkReader = Callable[[int, float], Sequence[NetworkMember]]
GraphReader = Callable[[], SocialGraph]


@dataclass
class _Readers:
    network: NetworkReader | None = None
    graph: GraphReader | None = None


_readers = _Readers()


def network_readers_register(*, network: NetworkReader, graph: GraphReader) -> None:
    """Called once by the relationships app: how to read a customer's network (customer
    primary key, request clock in epoch seconds) and the whole graph."""
    _readers.network = network
    _readers.graph = graph


def customer_network(*, customer_id: int, now: float) -> tuple[NetworkMember, ...]:
    """The customer's network as the social source sees it now (empty without the app)."""
    if _readers.network is None:
        return ()
    return tuple(_readers.network(customer_id, now))


def relationship_graph() -> SocialGraph | None:
    """Every relationship, for the offline evaluation; None when there is none."""
    if _readers.graph is None:
        return None
    graph = _readers.graph()
    return graph if len(graph) else None
