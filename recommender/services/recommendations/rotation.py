"""Rotation at request time: the demotion of a served list, from the visitor's recent lists in
the recommendation log (docs/merchandising.md, "Rotation").

A list whose serving configuration turns rotation on for its kind (``EngineConfig.rotation``)
reads the visitor's newest lists of that kind within the window (one bounded index range,
``visitor_recent_lists``); only when some product was shown often enough does it resolve those
products' ids and, for a customer, read when they last touched them. Nothing here reads anything
per product of the catalogue, and a list with rotation off reads nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from django.utils import timezone

from recommender.ml.engine import History
from recommender.models import Customer
from recommender.ranking.rotation import Demote, Rotation, rotation_factors
from recommender.selectors.catalog import product_pks
from recommender.selectors.recommendations import customer_recent_events, visitor_recent_lists

from .serving import ServingEngine

# When the visitor last touched each product (product pk -> epoch seconds), read only if some
# product was shown often enough to be demoted.
Touched = Callable[[], Mapping[int, float]]


def touched_in(history: History) -> dict[int, float]:
    """When ``history`` last touched each of its products (its newest event on it)."""
    last: dict[int, float] = {}
    for product_id, at in zip(history.product_ids, history.timestamps, strict=True):
        if at > last.get(product_id, float("-inf")):
            last[product_id] = float(at)
    return last


def customer_touched(customer: Customer) -> Touched:
    """A customer's last interactions, from their newest events (read when asked)."""

    def read() -> dict[int, float]:
        last: dict[int, float] = {}
        for product_id, _, at, _ in customer_recent_events(customer=customer):
            if product_id is not None and at > last.get(product_id, float("-inf")):
                last[product_id] = at
        return last

    return read


def no_touches() -> Mapping[int, float]:
    return {}


def rotation_demotion(
    *,
    serving: ServingEngine | None,
    kind: str,
    customer: Customer | None = None,
    session_id: str = "",
    touched: Touched = no_touches,
    now: datetime | None = None,
    replayed: bool = False,
) -> Demote | None:
    """The demotion of a ``kind`` list for this visitor (``customer``, else the anonymous
    ``session_id``) under the serving configuration's rotation, or None when rotation is off
    for the list, the request names no visitor, or nothing is to be demoted.

    ``now`` (default: the wall clock) dates the list: given, only lists served up to then count
    (a list as it would have been served at a past moment, e.g. a replayed visit). Only lists
    of the same traffic count: real ones, or with ``replayed`` the replay simulator's."""
    settings = serving.engine.config.rotation.get(kind) if serving is not None else None
    if not settings or (customer is None and not session_id):
        return None
    rotation = Rotation.from_settings(settings)
    at = (now or timezone.now()).timestamp()
    since = datetime.fromtimestamp(at - rotation.seconds, tz=timezone.get_current_timezone())
    lists = visitor_recent_lists(
        kind=kind, since=since, until=now, customer=customer, session_id=session_id,
        replayed=replayed,
    )  # fmt: skip
    # First by the logged ids, ignoring interactions: usually nothing was shown often enough,
    # and then nothing else is read.
    shown = rotation_factors(lists, rotation, now=at)
    if not shown:
        return None
    pks = product_pks(external_ids=shown)
    by_pk: list[tuple[float, Sequence[int]]] = [
        (served, [pks[pid] for pid in products if pid in pks]) for served, products in lists
    ]
    factors = rotation_factors(by_pk, rotation, now=at, touched=touched())
    return Demote(factors) if factors else None
