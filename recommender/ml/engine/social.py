"""The social source: products the customer's network touched, and social proof.

Owns :func:`social_scores` (stage 1's social candidates with their exact raw scores),
:func:`tie_strength` (:func:`tie_strengths` for a whole network) and :func:`social_proof`.
Bounded by the network the request carries (``History.network``: the caller caps the edges, the
second hop and each member's events), never by the catalogue.

A product ``p``'s raw score sums over the members ``m`` of the network who touched it::

    hop(m) x weight(m) x tie(m) x max over m's events on p of behaviour(type) x recency(age)

- ``hop``: 1 for the customer's own edges, ``social_hop_decay`` for the second hop;
- ``weight``: the edge's weight (two hops: the product of both);
- ``tie``: shared taste, ``social_tie_floor`` + the cosine overlap of the two histories
  (|A ∩ B| / sqrt(|A| |B|) over distinct products), so a customer with no history of their own
  still gets their network's products, and people with the same taste count more than
  strangers (at the default floor of 0.5, up to three times as much);
- ``behaviour``: the configured behaviour weight of the event type; ``recency``:
  0.5 ** (age / ``social_half_life_days``); a member's events after ``now`` are not seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml.interactions import DAY_SECONDS

from .data import NetworkMember

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# What one request's network may hold, whoever builds it (the serving selectors, the offline
# evaluation): the customer's strongest edges, the strongest second-hop members reached through
# them, and each member's newest events.
# At most 50 members and 1,000 events per request: the network read and the scoring cost a few
# milliseconds (bench/social.py).
MAX_DIRECT = 20
MAX_SECOND_HOP = 30
MAX_MEMBER_EVENTS = 20

# The default tie strength of a member who shares nothing with the customer (or of any member
# when the customer has no history): the network still counts, shared taste counts more. The
# engine reads ``EngineConfig.social_tie_floor``.
TIE_FLOOR = 0.5


@dataclass(frozen=True)
class Supporters:
    """Who supports each candidate: (member position, strongest event type) per member who
    touched it, members in network order. Kept as arrays sorted by engine row and answered per
    row on demand: a request names the supporters of the few products it returns, not of the
    hundreds the network proposed."""

    rows: np.ndarray  # Engine rows, ascending (a row once per member who touched it).
    members: np.ndarray  # Member positions, ascending within a row.
    events: np.ndarray  # Each entry's event, as a position in ``kinds``.
    kinds: Sequence[str]  # The event type of every event of the network.

    @classmethod
    def empty(cls) -> Supporters:
        none = np.empty(0, dtype=np.int64)
        return cls(none, none, none, ())

    def get(self, row: int) -> list[tuple[int, str]]:
        """The supporters of engine row ``row`` (none: an empty list)."""
        start, stop = np.searchsorted(self.rows, [row, row + 1])
        members = self.members[start:stop].tolist()
        events = self.events[start:stop].tolist()
        return [(int(m), self.kinds[e]) for m, e in zip(members, events, strict=True)]


@dataclass
class SocialScores:
    """The social source's candidates for one request: engine rows (ascending), their raw
    scores, and who supports each (``supporters.get(row)``: (member position, strongest event
    type) per member who touched it)."""

    rows: np.ndarray
    scores: np.ndarray
    supporters: Supporters = field(default_factory=Supporters.empty)

    @classmethod
    def empty(cls) -> SocialScores:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


def tie_strength(own: set[int], theirs: set[int], floor: float = TIE_FLOOR) -> float:
    """``floor`` + the cosine overlap of two sets of products (0 when either is empty)."""
    if not own or not theirs:
        return floor
    return floor + len(own & theirs) / math.sqrt(len(own) * len(theirs))


def social_scores(
    engine: HybridEngine,
    network: Sequence[NetworkMember],
    own_product_ids: Iterable[int],
    *,
    now: float,
) -> SocialScores:
    """Every product the network touched (known to the fit), scored as the module says.

    Vectorised over the network's events (at most ``MAX_DIRECT + MAX_SECOND_HOP`` members x
    ``MAX_MEMBER_EVENTS`` events): one weight per event, the strongest per (member, product),
    summed per product."""
    if not network:
        return SocialScores.empty()
    cfg = engine.config
    lengths = np.array([len(m.product_ids) for m in network], dtype=np.int64)
    if not lengths.sum():
        return SocialScores.empty()
    total = int(lengths.sum())
    member = np.repeat(np.arange(len(network)), lengths)
    pids = np.fromiter(chain.from_iterable(m.product_ids for m in network), np.int64, total)
    ties = tie_strengths(member, pids, own_product_ids, len(network), cfg.social_tie_floor)
    hops = np.array([1.0 if m.hop == 1 else cfg.social_hop_decay for m in network])
    weights = np.array([float(m.weight) for m in network], dtype=np.float64)
    factors = hops * weights * ties
    kinds = list(chain.from_iterable(m.event_types for m in network))
    times = np.fromiter(chain.from_iterable(m.timestamps for m in network), np.float64, total)
    weight_of = {k: float(cfg.behaviour_weights.get(k, 0.0)) for k in set(kinds)}
    behaviour = np.fromiter(map(weight_of.__getitem__, kinds), np.float64, total)
    scale = cfg.social_half_life_days * DAY_SECONDS
    weight = behaviour * np.power(0.5, np.maximum(now - times, 0.0) / scale)
    rows = engine._rows_of(pids)
    keep = (times <= now) & (weight > 0) & (factors[member] > 0) & (rows >= 0)
    if not keep.any():
        return SocialScores.empty()
    member, rows, weight = member[keep], rows[keep], weight[keep]
    kind_at = np.flatnonzero(keep)
    # The strongest event of each (member, product): sorted by (member, row), weight descending,
    # the first of each pair. The sorts are stable and the events come in order, so a tie goes
    # to the earlier event.
    pair = member * np.int64(engine.n_items) + rows
    order = np.lexsort((-weight, pair))
    pair = pair[order]
    chosen = order[np.r_[True, pair[1:] != pair[:-1]]]
    member, rows, weight, kind_at = member[chosen], rows[chosen], weight[chosen], kind_at[chosen]
    # By row (stable: members ascending within a row), then summed per row in that order, as
    # one pass over the rows in member order would add them.
    by_row = np.argsort(rows, kind="stable")
    sorted_rows = rows[by_row]
    starts = np.r_[True, sorted_rows[1:] != sorted_rows[:-1]]
    totals = np.bincount(np.cumsum(starts) - 1, weights=(factors[member] * weight)[by_row])
    supporters = Supporters(sorted_rows, member[by_row], kind_at[by_row], kinds)
    return SocialScores(sorted_rows[starts], totals.astype(np.float64), supporters)


def tie_strengths(
    member: np.ndarray, pids: np.ndarray, own_product_ids: Iterable[int], n: int, floor: float
) -> np.ndarray:
    """:func:`tie_strength` of each of ``n`` members (their events: ``member``, ``pids``) with
    the customer's own products, over the distinct products of each, in one pass."""
    own = np.unique(np.fromiter(own_product_ids, dtype=np.int64))
    ties = np.full(n, floor, dtype=np.float64)
    if not len(own):
        return ties
    order = np.lexsort((pids, member))
    m, p = member[order], pids[order]
    distinct = np.r_[True, (m[1:] != m[:-1]) | (p[1:] != p[:-1])]
    m, p = m[distinct], p[distinct]
    theirs = np.bincount(m, minlength=n)
    # Whether each product is the customer's own: a binary search in their sorted products.
    mine = own[np.minimum(np.searchsorted(own, p), len(own) - 1)] == p
    shared = np.bincount(m, weights=mine, minlength=n)
    some = theirs > 0
    ties[some] += shared[some] / np.sqrt(float(len(own)) * theirs[some])
    return ties


def social_proof(
    network: Sequence[NetworkMember], product_ids: Iterable[int], *, now: float
) -> dict[int, int]:
    """For each of ``product_ids``: how many of the customer's direct network (hop 1) have an
    event on it up to ``now`` (0 when none)."""
    wanted = {int(p) for p in product_ids}
    counts = dict.fromkeys(wanted, 0)
    for member in network:
        if member.hop != 1:
            continue
        seen = {
            int(p)
            for p, at in zip(member.product_ids, member.timestamps, strict=True)
            if at <= now and int(p) in wanted
        }
        for pid in seen:
            counts[pid] += 1
    return counts


def supporters_reason(
    network: Sequence[NetworkMember],
    supporters: Sequence[tuple[int, str]],
    behaviour_weights: Mapping[str, float],
) -> tuple[int, str, str, list[str]]:
    """What a reason says about an item's supporters: (how many, relation, strongest event
    type, display names given). Direct members when any supports it (their relation, or
    ``network`` when their edges differ), else the second hop (``network``)."""
    direct = [(i, kind) for i, kind in supporters if network[i].hop == 1]
    counted = direct or list(supporters)
    relations = {network[i].relation for i, _ in counted}
    relation = relations.pop() if direct and len(relations) == 1 else "network"
    kind = max((k for _, k in counted), key=lambda k: behaviour_weights.get(k, 0.0))
    names = [network[i].display_name for i, _ in counted if network[i].display_name]
    return len(counted), relation, kind, names
