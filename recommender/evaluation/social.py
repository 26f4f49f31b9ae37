"""The social source under evaluation: the relationship graph, each held-out customer's network
as of the held-out moment, the social weight chosen on validation, and the segments.

A customer's network offline is built exactly as the serving selectors build it (the same caps,
:mod:`recommender.ml.engine.social`): their own edges, strongest first, then their members'
edges (the second hop), each member with their newest training events *before* the held-out
moment (a member's later events, which the live shop could not have seen, never count).

Segments: the report's metrics again over the customers with at least one relationship of their
own (``with_relationships``), those without, and those whose history has at most three events
(``few_events``, where a network should help most); and, because a data set may have few such
customers, ``few_events_simulated``: the customers with relationships again, each history cut to
its three newest events (:func:`history_cut`), the held-out product and the network unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.ml.engine import EngineConfig, EngineData, HybridEngine, NetworkMember
from recommender.ml.engine.social import MAX_DIRECT, MAX_MEMBER_EVENTS, MAX_SECOND_HOP
from recommender.ml.interactions import Interactions

from . import metrics
from .splits import HeldOut

# Social weights tried on the validation split, with every value of each setting below.
SOCIAL_WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0, 3.0, 5.0)
# The social source's own settings tried on the validation split, one after the other
# (:func:`tune_social`). Its candidate room is not among them: the network a request carries
# (at most ``MAX_DIRECT + MAX_SECOND_HOP`` members x ``MAX_MEMBER_EVENTS`` events) rarely
# touches more products than ``candidates_per_source`` admits (docs/evaluation.md).
SOCIAL_SETTINGS_GRID: dict[str, tuple[float, ...]] = {
    "social_half_life_days": (30.0, 90.0, 180.0, 365.0, 1095.0, 3650.0),
    "social_hop_decay": (0.0, 0.25, 0.5, 1.0),
    "social_tie_floor": (0.1, 0.25, 0.5, 1.0, 2.0),
}
FEW_EVENTS = 3


@dataclass(frozen=True)
class SocialGraph:
    """Directed edges between customers (keys as in ``Interactions.user_ids``), parallel arrays."""

    source: np.ndarray  # int64 customer keys
    target: np.ndarray
    weight: np.ndarray  # float64
    relation: Sequence[str]

    def __len__(self) -> int:
        return len(self.source)


class Networks:
    """Each customer's network as of a moment, from a graph and the training events."""

    def __init__(
        self, graph: SocialGraph, inter: Interactions, user_events: Mapping[int, np.ndarray]
    ) -> None:
        self.inter = inter
        self.user_events = user_events
        users = np.asarray(inter.user_ids, dtype=np.int64)
        src = _index_of(users, graph.source)
        dst = _index_of(users, graph.target)
        keep = (src >= 0) & (dst >= 0) & (src != dst)
        self.edges: dict[int, list[tuple[int, float, str]]] = {}
        relations = list(graph.relation)
        for i in np.flatnonzero(keep).tolist():
            self.edges.setdefault(int(src[i]), []).append(
                (int(dst[i]), float(graph.weight[i]), relations[i])
            )
        for out in self.edges.values():
            out.sort(key=lambda e: (-e[1], e[0]))  # Strongest first, then by customer.

    def has_edges(self, user: int) -> bool:
        return bool(self.edges.get(user))

    def network(self, user: int, *, before: float) -> tuple[NetworkMember, ...]:
        direct = self.edges.get(user, [])[:MAX_DIRECT]
        members: list[tuple[int, int, float, str]] = [(v, 1, w, rel) for v, w, rel in direct]
        seen = {user, *(v for v, _, _ in direct)}
        second: dict[int, tuple[float, str]] = {}
        for v, w, rel in direct:
            for x, w2, _ in self.edges.get(v, [])[:MAX_DIRECT]:
                if x in seen:
                    continue
                if w * w2 > second.get(x, (-1.0, ""))[0]:
                    second[x] = (w * w2, rel)
        ranked = sorted(second.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_SECOND_HOP]
        members += [(x, 2, w, rel) for x, (w, rel) in ranked]
        inter = self.inter
        out = []
        for v, hop, w, rel in members:
            events = self.user_events.get(v)
            if events is None:
                events = np.empty(0, dtype=np.int64)
            events = events[inter.timestamp[events] < before][-MAX_MEMBER_EVENTS:]
            out.append(
                NetworkMember(
                    customer_id=int(inter.user_ids[v]),
                    hop=hop,
                    weight=w,
                    relation=rel,
                    product_ids=inter.item_ids[inter.item_idx[events]].tolist(),
                    event_types=[inter.event_types[c] for c in inter.event_code[events]],
                    timestamps=inter.timestamp[events].tolist(),
                )
            )
        return tuple(out)


def _index_of(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    wanted = np.asarray(wanted, dtype=np.int64)
    if not len(keys) or not len(wanted):
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, -1).astype(np.int64)


def with_social_weight(config: EngineConfig, weight: float) -> EngineConfig:
    return config.replace(source_weights={**config.source_weights, "social": weight})


def social_only(config: EngineConfig) -> EngineConfig:
    weights = dict.fromkeys(config.source_weights, 0.0)
    return config.replace(source_weights={**weights, "social": 1.0})


def segment_users(
    held: Sequence[HeldOut],
    networks: Networks,
    user_events: Mapping[int, np.ndarray],
) -> dict[str, set[int]]:
    """The customers of each segment (their ``HeldOut.user``)."""
    out: dict[str, set[int]] = {"with_relationships": set(), "without_relationships": set(),
                                 "few_events": set()}  # fmt: skip
    for h in held:
        events = user_events.get(h.user)
        if events is None or not len(events):
            continue
        key = "with_relationships" if networks.has_edges(h.user) else "without_relationships"
        out[key].add(h.user)
        if len(events) <= FEW_EVENTS:
            out["few_events"].add(h.user)
    return out


def history_cut(
    user_events: Mapping[int, np.ndarray], users: Iterable[int], *, keep: int = FEW_EVENTS
) -> dict[int, np.ndarray]:
    """``user_events`` with the history of each of ``users`` cut to its ``keep`` newest events
    (the others as they are): the ``few_events_simulated`` segment, customers with a network
    as if they had as little history of their own as ``few_events`` customers."""
    cut = dict(user_events)
    for user in users:
        events = cut.get(user)
        if events is not None:
            cut[user] = events[-keep:]  # Events are in time order.
    return cut


def segment_metrics(
    ranks: Mapping[str, Mapping[int, int | None]],
    segments: Mapping[str, set[int]],
    ks: Sequence[int],
) -> dict[str, Any]:
    """Recall@K, NDCG@K and MRR per model over each segment's customers."""
    out: dict[str, Any] = {}
    for name, users in segments.items():
        models = {}
        for model, by_user in ranks.items():
            chosen = [by_user[u] for u in users if u in by_user]
            n = max(len(chosen), 1)
            values: dict[str, float] = {}
            for k in ks:
                values[f"recall@{k}"] = round(sum(metrics.recall_at_k(r, k) for r in chosen) / n, 5)
                values[f"ndcg@{k}"] = round(sum(metrics.ndcg_at_k(r, k) for r in chosen) / n, 5)
            values["mrr"] = round(sum(metrics.reciprocal_rank(r) for r in chosen) / n, 5)
            values["users"] = len(chosen)
            models[model] = values
        out[name] = {"users": len(users), "models": models}
    return out


def tune_social(
    data: EngineData,
    *,
    config: EngineConfig,
    graph: SocialGraph,
    engine_for: Callable[[EngineData], HybridEngine],
    min_items: int = 3,
    k: int = 10,
    weights: Sequence[float] = SOCIAL_WEIGHT_GRID,
    settings: Mapping[str, Sequence[float]] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[EngineConfig, list[dict[str, Any]]]:
    """Choose the social source's settings on the validation split (second-to-last products,
    training data that ends before them), over the validation customers with relationships;
    the test items never enter. ``engine_for`` fits an engine on the given training data (the
    caller's fit options); every other setting of ``config`` (the configuration that would
    serve) stays as it is.

    One coordinate pass: for each setting of ``settings`` (``SOCIAL_SETTINGS_GRID``) in turn,
    every value is scored at every social weight of ``weights``, the settings chosen so far
    held; the (value, weight) with the best NDCG@k is kept (ties: the value held so far, then
    the smaller weight). Each value costs one candidate set per customer (stage 1,
    every source on); the weights re-weight it (``blend_tuning._grid_ndcg``), ranking as the
    engine's blend does. Returns ``config`` with the chosen settings and one row per value
    (its best weight and NDCG@k, and NDCG@k at every weight)."""
    from .blend_tuning import _grid_ndcg
    from .rankers import _context, _history, _train_data, masked_config
    from .splits import leave_last_out

    grid = SOCIAL_SETTINGS_GRID if settings is None else settings
    inter = data.interactions
    test = leave_last_out(inter, min_items=min_items)
    val = leave_last_out(inter, min_items=min_items, steps=1, base=test.train)
    ctx = _context(data, val.train, masked_config(config, inter))
    networks = Networks(graph, inter, ctx.user_events)
    held = [
        (h, ctx.user_events[h.user], networks.network(h.user, before=h.time))
        for h in val.held_out
        if networks.has_edges(h.user) and len(ctx.user_events.get(h.user, ()))
    ]
    engine = engine_for(_train_data(data, ctx.train))
    sources = tuple(s for s, w in config.source_weights.items() if s != "social" and w > 0)
    fixed = [float(config.source_weights[s]) for s in sources]
    points = np.array([[*fixed, float(w)] for w in weights], dtype=np.float64)
    chosen = config
    weight = float(config.source_weights.get("social", 0.0))
    best = -1.0
    rows: list[dict[str, Any]] = []
    for name, values in grid.items():
        held_value = float(getattr(chosen, name))
        for value in dict.fromkeys([held_value, *(float(v) for v in values)]):
            if value == held_value and best >= 0:
                continue  # The configuration chosen so far: scored already.
            trial = chosen.replace(**{name: value})
            tuned = engine.with_config(masked_config(trial, inter))
            totals = np.zeros(len(points), dtype=np.float64)
            for h, events, network in held:
                history = _history(data, events, network)
                cset = tuned.candidates(history, now=h.time, all_sources=True)
                at = int(np.searchsorted(cset.rows, h.item))
                if at < len(cset.rows) and int(cset.rows[at]) == h.item:
                    totals += _grid_ndcg(cset, at, (*sources, "social"), points, k=k)
            ndcg = totals / max(len(held), 1)
            top = int(np.argmax(ndcg))  # The first best: the smallest weight.
            rows.append({"setting": name, "value": value, "social": float(weights[top]),
                         f"ndcg@{k}": round(float(ndcg[top]), 5), "users": len(held),
                         "by_weight": [round(float(x), 5) for x in ndcg]})  # fmt: skip
            log(f"validation: {name} {value:g}: best NDCG@{k} {ndcg[top]:.4f} at social "
                f"weight {weights[top]:g} ({len(held)} customers)")  # fmt: skip
            # The value held so far is scored first, so a later one must do strictly better.
            if ndcg[top] > best + 1e-12:
                best, weight, chosen = float(ndcg[top]), float(weights[top]), trial
    return with_social_weight(chosen, weight), rows
