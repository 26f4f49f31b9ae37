"""Rankers under evaluation and their scoring: the baselines (popularity, item kNN, EASE,
content), the hybrid engine as a ranker, the evaluation context (training data, histories,
masks) and the metrics of every ranker over the held-out customers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.ml import neighbours as nb
from recommender.ml.collaborative import top_k, user_item_matrix
from recommender.ml.engine import (
    AnnSearch,
    EngineConfig,
    EngineData,
    History,
    HybridEngine,
    NetworkMember,
)
from recommender.ml.interactions import Interactions
from recommender.ml.interest import event_vector_weights, interest_vector

from . import metrics
from .splits import HeldOut, _user_groups

if TYPE_CHECKING:
    from .social import Networks

DEPTH = 100
BASELINES = ("popularity", "item_knn", "ease", "content")
# The dense EASE baseline is fitted up to this many products (one float32 n x n matrix).
EASE_BASELINE_MAX_ITEMS = 20_000


@dataclass
class ModelResult:
    name: str
    metrics: dict[str, float]
    users: int
    seconds: float
    # Each scored customer's rank of the held-out product (None beyond the list): the segments.
    ranks: dict[int, int | None] = field(default_factory=dict, repr=False)


Ranker = Callable[[HeldOut, np.ndarray], np.ndarray]  # (held-out, history events) -> top rows


def _masked_top(scores: np.ndarray, banned: np.ndarray, depth: int) -> np.ndarray:
    masked = np.asarray(scores, dtype=np.float64).copy()
    masked[banned] = -np.inf
    return top_k(masked, depth)


def _history(
    data: EngineData, events: np.ndarray, network: Sequence[NetworkMember] = ()
) -> History:
    inter = data.interactions
    return History(
        product_ids=data.item_ids[inter.item_idx[events]].tolist(),
        event_types=[inter.event_types[c] for c in inter.event_code[events]],
        timestamps=inter.timestamp[events].tolist(),
        network=network,
    )


@dataclass
class _Context:
    data: EngineData
    train: Interactions
    config: EngineConfig
    user_events: dict[int, np.ndarray]
    inactive: np.ndarray
    depth: int = DEPTH

    def banned(self, events: np.ndarray) -> np.ndarray:
        banned = self.inactive.copy()
        banned[self.data.interactions.item_idx[events]] = True
        return banned


def baseline_rankers(ctx: _Context, *, names: Sequence[str] = BASELINES) -> dict[str, Ranker]:
    cfg = ctx.config
    train = ctx.train
    matrix = user_item_matrix(train, behaviour_weights=cfg.behaviour_weights)
    now = float(train.timestamp.max()) if len(train) else 0.0
    rankers: dict[str, Ranker] = {}
    inter = ctx.data.interactions
    n = len(ctx.data.item_ids)

    def history_rows(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The products of ``events`` and each one's strongest behaviour weight."""
        weights = np.array(
            [cfg.behaviour_weights.get(inter.event_types[c], 0.0) for c in inter.event_code[events]]
        )
        rows, inverse = np.unique(inter.item_idx[events], return_inverse=True)
        strongest = np.zeros(len(rows), dtype=np.float64)
        np.maximum.at(strongest, inverse.reshape(-1), weights)
        return rows.astype(np.int64), strongest

    if "popularity" in names:
        from recommender.ml.collaborative import Popularity

        popularity = Popularity(
            half_life_days=cfg.popularity_half_life_days, window_days=cfg.trending_window_days
        ).fit(train, behaviour_weights=cfg.behaviour_weights, now=now)
        pop = np.asarray(popularity.scores)
        rankers["popularity"] = lambda h, ev: _masked_top(pop, ctx.banned(ev), ctx.depth)
    if "item_knn" in names:
        knn = nb.item_knn(matrix, k=cfg.knn_neighbours)

        def item_knn(h: HeldOut, ev: np.ndarray) -> np.ndarray:
            rows, weights = history_rows(ev)
            cols, sums = knn.accumulate(rows, weights)
            scores = np.zeros(n, dtype=np.float64)
            scores[cols] = sums
            return _masked_top(scores, ctx.banned(ev), ctx.depth)

        rankers["item_knn"] = item_knn
    if "ease" in names and n <= EASE_BASELINE_MAX_ITEMS:
        ease = nb.ease_weights(matrix, l2=cfg.ease_lambda)  # Dense and exact: the baseline.

        def ease_ranker(h: HeldOut, ev: np.ndarray) -> np.ndarray:
            rows, weights = history_rows(ev)
            scores = weights.astype(np.float32) @ ease[rows]
            return _masked_top(scores, ctx.banned(ev), ctx.depth)

        rankers["ease"] = ease_ranker
    if "content" in names:
        vectors = ctx.data.item_vectors

        def content(h: HeldOut, ev: np.ndarray) -> np.ndarray:
            # The interest vector of recommender.ml.interest: q_u = sum_t w_t v_i, scored by cosine.
            weights = event_vector_weights(
                event_types=[inter.event_types[c] for c in inter.event_code[ev]],
                timestamps=inter.timestamp[ev],
                behaviour_weights=cfg.behaviour_weights,
                half_life_days=cfg.half_life_days,
                now=h.time,
            )
            rows = inter.item_idx[ev]
            has = ctx.data.has_vector[rows]
            q = interest_vector(vectors[rows[has]], weights[has])
            if q is None:
                return np.empty(0, dtype=np.int64)
            scores = np.where(ctx.data.has_vector, vectors @ q, -np.inf)
            return _masked_top(scores, ctx.banned(ev), ctx.depth)

        rankers["content"] = content
    return rankers


@dataclass
class HybridRanker:
    """The engine as a ranker (both stages), counting how often stage 1 finds the target.

    ``candidate_recall``: the share of held-out products that reach the blended candidate set
    (a product outside it cannot be recommended, whatever stage 2 does).
    """

    ctx: _Context
    engine: HybridEngine
    # The customers' networks as of each held-out moment (the social source), if any.
    networks: Networks | None = None
    # The candidates' vector search (None: the engine's own, built at its first query).
    search: AnnSearch | None = None
    found: int = 0
    ranked: int = 0
    candidates: int = 0

    def __call__(self, h: HeldOut, ev: np.ndarray) -> np.ndarray:
        network = () if self.networks is None else self.networks.network(h.user, before=h.time)
        cset = self.engine.candidates(
            _history(self.ctx.data, ev, network), now=h.time, ann=self.search
        )
        fused = self.engine.fuse(cset)
        rows = cset.rows[fused.positions[fused.positions < len(cset.rows)]]
        self.ranked += 1
        self.candidates += len(fused.positions)
        self.found += int(h.item in rows)
        if not len(fused.positions):
            return np.empty(0, dtype=np.int64)
        return self.engine.rank_fused(fused, k=self.ctx.depth)

    def stage_one(self) -> dict[str, float]:
        n = max(self.ranked, 1)
        return {
            "candidate_recall": round(self.found / n, 5),
            "candidates": round(self.candidates / n, 1),
        }


def hybrid_ranker(
    ctx: _Context,
    engine: HybridEngine,
    networks: Networks | None = None,
    *,
    search: AnnSearch | None = None,
) -> HybridRanker:
    return HybridRanker(ctx=ctx, engine=engine, networks=networks, search=search)


def masked_config(config: EngineConfig, inter: Interactions) -> EngineConfig:
    """The config with every event type excluded: the protocol masks the whole history."""
    return config.replace(exclude_event_types=list(inter.event_types))


def _context(data: EngineData, train_mask: np.ndarray, config: EngineConfig) -> _Context:
    inter = data.interactions
    train = inter.subset(train_mask)
    user_events = dict(_user_groups(inter, train_mask))
    return _Context(
        data=data,
        train=train,
        config=config,
        user_events=user_events,
        inactive=~np.asarray(data.item_active, dtype=bool),
    )


def _train_data(data: EngineData, train: Interactions) -> EngineData:
    return replace(data, interactions=train)


def score_rankers(
    ctx: _Context, rankers: Mapping[str, Ranker], held: Sequence[HeldOut], ks: Sequence[int]
) -> list[ModelResult]:
    with threadpool_limits(limits=1, user_api="blas"):
        return _score_rankers(ctx, rankers, held, ks)


def _score_rankers(
    ctx: _Context, rankers: Mapping[str, Ranker], held: Sequence[HeldOut], ks: Sequence[int]
) -> list[ModelResult]:
    # One BLAS thread: per-customer products are small, and threads only contend.
    results = []
    n_active = int((~ctx.inactive).sum())
    for name, ranker in rankers.items():
        started = time.perf_counter()
        sums: dict[str, float] = {}
        lists: list[list[int]] = []
        ild: dict[int, list[float]] = {k: [] for k in ks}
        users = 0
        ranks: dict[int, int | None] = {}
        for h in held:
            events = ctx.user_events.get(h.user)
            if events is None or not len(events):
                continue
            ranked = ranker(h, events)
            rank = metrics.rank_of(ranked, h.item)
            ranks[h.user] = rank
            users += 1
            for k in ks:
                sums[f"recall@{k}"] = sums.get(f"recall@{k}", 0.0) + metrics.recall_at_k(rank, k)
                sums[f"ndcg@{k}"] = sums.get(f"ndcg@{k}", 0.0) + metrics.ndcg_at_k(rank, k)
                top = ranked[:k]
                top = top[ctx.data.has_vector[top]]
                ild[k].append(metrics.intra_list_diversity(ctx.data.item_vectors[top]))
            sums["mrr"] = sums.get("mrr", 0.0) + metrics.reciprocal_rank(rank)
            lists.append(ranked[: max(ks)].tolist())
        values = {key: round(total / max(users, 1), 5) for key, total in sums.items()}
        if isinstance(ranker, HybridRanker):
            values.update(ranker.stage_one())
        for k in ks:
            values[f"coverage@{k}"] = round(
                metrics.catalogue_coverage(lists, n_items=n_active, k=k), 5
            )
            values[f"ild@{k}"] = round(float(np.mean(ild[k])) if ild[k] else 0.0, 5)
        results.append(
            ModelResult(
                name=name,
                metrics=values,
                users=users,
                seconds=round(time.perf_counter() - started, 2),
                ranks=ranks,
            )
        )
    return results
