"""The social source: products the customer's network touched, and social proof.

Owns :func:`social_scores` (stage 1's social candidates with their exact raw scores),
:func:`tie_strength` and :func:`social_proof`. Bounded by the network the request carries
(``History.network``: the caller caps the edges, the second hop and each member's events), never
by the catalogue.

A product ``p``'s raw score sums over the members ``m`` of the network who touched it::

    hop(m) x weight(m) x tie(m) x max over m's events on p of behaviour(type) x recency(age)

- ``hop``: 1 for the customer's own edges, ``social_hop_decay`` for the second hop;
- ``weight``: the edge's weight (two hops: the product of both);
- ``tie``: shared taste, ``TIE_FLOOR`` + the cosine overlap of the two histories
  (|A ∩ B| / sqrt(|A| |B|) over distinct products), so a customer with no history of their own
  still gets their network's products, and people with the same taste count up to three times
  as much as strangers;
- ``behaviour``: the configured behaviour weight of the event type; ``recency``:
  0.5 ** (age / ``social_half_life_days``); a member's events after ``now`` are not seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml.interactions import DAY_SECONDS

from .data import NetworkMember

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# What one request's network may hold, whoever builds it (the serving selectors, the offline
# evaluation): the customer's strongest edges, the strongest second-hop members reached through
# them, and each member's newest events.
MAX_DIRECT = 50
MAX_SECOND_HOP = 100
MAX_MEMBER_EVENTS = 50

# The tie strength of a member who shares nothing with the customer (or of any member when the
# customer has no history): the network still counts, shared taste counts more.
TIE_FLOOR = 0.5


@dataclass
class SocialScores:
    """The social source's candidates for one request: engine rows (ascending), their raw
    scores, and who supports each (``supporters[row]``: (member position, strongest event type)
    per member who touched it)."""

    rows: np.ndarray
    scores: np.ndarray
    supporters: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> SocialScores:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), {})


def tie_strength(own: set[int], theirs: set[int]) -> float:
    """``TIE_FLOOR`` + the cosine overlap of two sets of products (0 when either is empty)."""
    if not own or not theirs:
        return TIE_FLOOR
    return TIE_FLOOR + len(own & theirs) / math.sqrt(len(own) * len(theirs))


def member_products(
    member: NetworkMember,
    *,
    behaviour_weights: Mapping[str, float],
    half_life_days: float,
    now: float,
) -> dict[int, tuple[float, str]]:
    """Product id -> (the strongest behaviour x recency weight of the member's events on it,
    that event's type); events after ``now`` and of types with no weight are left out."""
    out: dict[int, tuple[float, str]] = {}
    scale = half_life_days * DAY_SECONDS
    for pid, kind, at in zip(member.product_ids, member.event_types, member.timestamps,
                             strict=True):  # fmt: skip
        if at > now:
            continue
        weight = behaviour_weights.get(kind, 0.0) * 0.5 ** ((now - at) / scale)
        if weight <= 0:
            continue
        best = out.get(int(pid))
        if best is None or weight > best[0]:
            out[int(pid)] = (weight, kind)
    return out


def social_scores(
    engine: HybridEngine,
    network: Sequence[NetworkMember],
    own_product_ids: Iterable[int],
    *,
    now: float,
) -> SocialScores:
    """Every product the network touched (known to the fit), scored as the module says."""
    if not network:
        return SocialScores.empty()
    cfg = engine.config
    own = {int(p) for p in own_product_ids}
    totals: dict[int, float] = {}
    supporters: dict[int, list[tuple[int, str]]] = {}
    for position, member in enumerate(network):
        hop = 1.0 if member.hop == 1 else cfg.social_hop_decay
        if hop <= 0 or member.weight <= 0:
            continue
        touched = member_products(
            member,
            behaviour_weights=cfg.behaviour_weights,
            half_life_days=cfg.social_half_life_days,
            now=now,
        )
        if not touched:
            continue
        factor = (
            hop * float(member.weight) * tie_strength(own, {int(p) for p in member.product_ids})
        )
        for pid, (weight, kind) in touched.items():
            totals[pid] = totals.get(pid, 0.0) + factor * weight
            supporters.setdefault(pid, []).append((position, kind))
    if not totals:
        return SocialScores.empty()
    ids = np.fromiter(totals, dtype=np.int64, count=len(totals))
    rows = engine._rows_of(ids)
    known = rows >= 0
    order = np.argsort(rows[known], kind="stable")
    rows_known = rows[known][order]
    ids_known = ids[known][order]
    scores = np.array([totals[int(p)] for p in ids_known.tolist()], dtype=np.float64)
    by_row = {
        int(r): supporters[int(p)]
        for r, p in zip(rows_known.tolist(), ids_known.tolist(), strict=True)
    }
    return SocialScores(rows_known.astype(np.int64), scores, by_row)


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
