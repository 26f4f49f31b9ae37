"""Leave-last-out and cold-start protocols, the baselines, and blend tuning on validation.

Leave-last-out (the issue's protocol): every customer with at least ``min_items`` distinct
products holds out the product they touched last (the product whose first event is latest; ties
in time are broken by event order). That product's events and every later event of the customer
are removed from training; the customer's remaining events are the history. Each model ranks
every product with the history masked (all products the customer touched in training, of any
event type, are never ranked), and the held-out product is looked for in the top of the list.

Validation: the same step applied twice gives the second-to-last product, with training data
that ends before it. Blend weights are tuned on that split only; test items are never seen.

Cold start: a seeded 10% of the products with events lose all their events in training. For each
customer who touched one of them, the first such product is the target and the customer's
other (warm) events up to that moment are the history. Only a content path can find the target.

Metrics: Recall@K, NDCG@K, MRR (ranks beyond ``depth`` = 100 count as 0: at most 0.01 each),
catalogue coverage@K (share of active products in any top-K list) and intra-list diversity@K
(1 - mean pairwise cosine of the product vectors of a list, over products that have vectors).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.ml import neighbours as nb
from recommender.ml.collaborative import top_k, user_item_matrix
from recommender.ml.engine import CandidateSet, EngineConfig, EngineData, History, HybridEngine
from recommender.ml.interactions import Interactions
from recommender.ml.interest import event_vector_weights, interest_vector

from . import metrics

DEPTH = 100
BASELINES = ("popularity", "item_knn", "ease", "content")
# The dense EASE baseline is fitted up to this many products (one float32 n x n matrix).
EASE_BASELINE_MAX_ITEMS = 20_000
TUNED_SOURCES = ("semantic", "popularity", "trending")


@dataclass(frozen=True)
class HeldOut:
    user: int  # Index into interactions.user_ids.
    item: int  # Index into interactions.item_ids.
    time: float


@dataclass
class Split:
    train: np.ndarray  # Boolean mask over the events.
    held_out: list[HeldOut]


@dataclass
class ModelResult:
    name: str
    metrics: dict[str, float]
    users: int
    seconds: float


@dataclass
class Report:
    protocol: str
    ks: tuple[int, ...]
    users: int
    items: int
    events: int
    results: list[ModelResult] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "ks": list(self.ks),
            "users": self.users,
            "items": self.items,
            "events": self.events,
            "models": {
                r.name: {**r.metrics, "users": r.users, "seconds": r.seconds} for r in self.results
            },
            "config": self.config,
            "notes": self.notes,
        }


# Splits ---------------------------------------------------------------------------------------


def _user_groups(inter: Interactions, mask: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
    """(user, event indices in time order) for the events in ``mask``."""
    idx = np.flatnonzero(mask)
    order = idx[np.lexsort((idx, inter.timestamp[idx], inter.user_idx[idx]))]
    users = inter.user_idx[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            yield int(inter.user_idx[chunk[0]]), chunk


def leave_last_out(
    inter: Interactions, *, min_items: int = 3, steps: int = 1, base: np.ndarray | None = None
) -> Split:
    """Hold out each eligible customer's last product; ``steps=2`` gives the validation split."""
    mask = np.ones(len(inter), dtype=bool) if base is None else base.copy()
    # Every customer's events, grouped once (a sort of all events): eligibility reads them, and
    # so does the first step when no base mask narrows it.
    everyone = list(_user_groups(inter, np.ones(len(inter), dtype=bool)))
    eligible = {
        user for user, events in everyone if len(np.unique(inter.item_idx[events])) >= min_items
    }
    held: list[HeldOut] = []
    for step in range(steps):
        held = []
        drop: list[np.ndarray] = []
        groups = everyone if step == 0 and base is None else _user_groups(inter, mask)
        for user, events in groups:
            if user not in eligible:
                continue
            items = inter.item_idx[events]
            distinct, first = np.unique(items, return_index=True)
            if len(distinct) < 2:
                continue  # Nothing would be left as history.
            last = int(np.argmax(first))
            item = int(distinct[last])
            at = float(inter.timestamp[events[first[last]]])
            gone = (items == item) | (inter.timestamp[events] > at)
            drop.append(events[gone])
            held.append(HeldOut(user=user, item=item, time=at))
        if drop:
            mask[np.concatenate(drop)] = False
    return Split(train=mask, held_out=held)


def cold_start_split(
    inter: Interactions, *, share: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, list[HeldOut], np.ndarray]:
    """(train mask, held-out first cold product per customer, cold item indices)."""
    rng = np.random.default_rng(seed)
    with_events = np.unique(inter.item_idx)
    n_cold = max(1, round(share * len(with_events)))
    cold = np.sort(rng.choice(with_events, size=n_cold, replace=False))
    is_cold = np.isin(inter.item_idx, cold)
    held: list[HeldOut] = []
    for user, events in _user_groups(inter, np.ones(len(inter), dtype=bool)):
        cold_events = events[is_cold[events]]
        if not len(cold_events):
            continue
        first = cold_events[0]
        at = float(inter.timestamp[first])
        warm_before = events[(~is_cold[events]) & (inter.timestamp[events] <= at)]
        if len(warm_before):
            held.append(HeldOut(user=user, item=int(inter.item_idx[first]), time=at))
    return ~is_cold, held, cold


# Models ---------------------------------------------------------------------------------------

Ranker = Callable[[HeldOut, np.ndarray], np.ndarray]  # (held-out, history events) -> top rows


def _masked_top(scores: np.ndarray, banned: np.ndarray, depth: int) -> np.ndarray:
    masked = np.asarray(scores, dtype=np.float64).copy()
    masked[banned] = -np.inf
    return top_k(masked, depth)


def _history(data: EngineData, events: np.ndarray) -> History:
    inter = data.interactions
    return History(
        product_ids=data.item_ids[inter.item_idx[events]].tolist(),
        event_types=[inter.event_types[c] for c in inter.event_code[events]],
        timestamps=inter.timestamp[events].tolist(),
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
            # The seed's formula: q_u = sum_t w_t v_i, scored by cosine.
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
    found: int = 0
    ranked: int = 0
    candidates: int = 0

    def __call__(self, h: HeldOut, ev: np.ndarray) -> np.ndarray:
        cset = self.engine.candidates(_history(self.ctx.data, ev), now=h.time)
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


def hybrid_ranker(ctx: _Context, engine: HybridEngine) -> HybridRanker:
    return HybridRanker(ctx=ctx, engine=engine)


def masked_config(config: EngineConfig, inter: Interactions) -> EngineConfig:
    """The config with every event type excluded: the protocol masks the whole history."""
    return config.replace(exclude_event_types=list(inter.event_types))


# Running --------------------------------------------------------------------------------------


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
    return EngineData(
        item_ids=data.item_ids,
        item_vectors=data.item_vectors,
        has_vector=data.has_vector,
        item_titles=data.item_titles,
        item_categories=data.item_categories,
        item_created_at=data.item_created_at,
        item_active=data.item_active,
        interactions=train,
    )


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
        for h in held:
            events = ctx.user_events.get(h.user)
            if events is None or not len(events):
                continue
            ranked = ranker(h, events)
            rank = metrics.rank_of(ranked, h.item)
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
            )
        )
    return results


def evaluate_leave_last_out(
    data: EngineData,
    *,
    config: EngineConfig,
    ks: Sequence[int] = (10, 20),
    min_items: int = 3,
    tune: bool = False,
    max_tune_users: int = 3000,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
) -> Report:
    """Leave-last-out for the baselines and the hybrid (``fit_options`` go to every
    :meth:`HybridEngine.fit`: the collaborative model's limit and threads, as the serving fit)."""
    options = dict(fit_options or {})
    inter = data.interactions
    split = leave_last_out(inter, min_items=min_items)
    cfg = masked_config(config, inter)
    ctx = _context(data, split.train, cfg)
    report = Report(
        protocol="leave-last-out",
        ks=tuple(ks),
        users=len(split.held_out),
        items=int(np.asarray(data.item_active).sum()),
        events=len(inter),
        config=config.to_dict(),
    )
    log(f"leave-last-out: {len(split.held_out)} customers, {len(inter)} events")
    rankers = baseline_rankers(ctx)
    now = float(ctx.train.timestamp.max())
    engine = HybridEngine(cfg).fit(_train_data(data, ctx.train), now=now, **options)
    report.notes["collaborative"] = engine.collaborative_note
    rankers["hybrid"] = hybrid_ranker(ctx, engine)
    if tune:
        tuned, table = tune_blend(
            data,
            config=config,
            min_items=min_items,
            max_users=max_tune_users,
            seed=seed,
            log=log,
            fit_options=options,
        )
        report.notes["tuned_config"] = tuned.to_dict()
        report.notes["validation"] = table[:10]
        tuned_engine = HybridEngine(masked_config(tuned, inter)).fit(
            _train_data(data, ctx.train), now=now, **options
        )
        rankers["hybrid_tuned"] = hybrid_ranker(ctx, tuned_engine)
    report.results = score_rankers(ctx, rankers, split.held_out, ks)
    return report


def evaluate_cold_start(
    data: EngineData,
    *,
    config: EngineConfig,
    ks: Sequence[int] = (10, 20),
    share: float = 0.1,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
) -> Report:
    inter = data.interactions
    train_mask, held, cold = cold_start_split(inter, share=share, seed=seed)
    cfg = masked_config(config, inter)
    ctx = _context(data, train_mask, cfg)
    # History: the customer's warm events up to the cold product's moment.
    for h in held:
        events = ctx.user_events.get(h.user)
        if events is not None:
            ctx.user_events[h.user] = events[inter.timestamp[events] <= h.time]
    log(f"cold-start: {len(cold)} cold products, {len(held)} customers")
    rankers = baseline_rankers(ctx, names=("popularity", "content"))
    engine = HybridEngine(cfg).fit(
        _train_data(data, ctx.train), now=float(ctx.train.timestamp.max()), **(fit_options or {})
    )
    rankers["hybrid"] = hybrid_ranker(ctx, engine)
    report = Report(
        protocol="cold-start",
        ks=tuple(ks),
        users=len(held),
        items=int(np.asarray(data.item_active).sum()),
        events=len(inter),
        config=config.to_dict(),
        notes={"cold_products": len(cold), "share": share, "seed": seed},
    )
    report.results = score_rankers(ctx, rankers, held, ks)
    return report


# Tuning ---------------------------------------------------------------------------------------

WEIGHT_GRID: dict[str, tuple[float, ...]] = {
    "semantic": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
    "popularity": (0.0, 0.02, 0.05, 0.1, 0.2),
    "trending": (0.0, 0.02, 0.05),
}
HALF_LIVES = (7.0, 30.0, 90.0, 365.0, 3650.0)
N_INTERESTS = (1, 3)


def tune_blend(
    data: EngineData,
    *,
    config: EngineConfig,
    min_items: int = 3,
    max_users: int = 3000,
    seed: int = 0,
    k: int = 10,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
) -> tuple[EngineConfig, list[dict[str, Any]]]:
    """Grid-search the blend on the validation split (second-to-last products). Test items never
    enter: the validation training data ends before each customer's second-to-last product.

    Collaborative keeps weight 1 (only ratios matter); semantic, popularity and trending
    weights, the history half-life and the number of interests are searched. Returns the best
    config (by NDCG@k) and the table of the best combinations.
    """
    inter = data.interactions
    test = leave_last_out(inter, min_items=min_items)
    val = leave_last_out(inter, min_items=min_items, steps=1, base=test.train)
    held = val.held_out
    if len(held) > max_users:
        rng = np.random.default_rng(seed)
        held = [held[i] for i in np.sort(rng.choice(len(held), size=max_users, replace=False))]
    base = masked_config(config, inter).replace(
        source_weights=dict.fromkeys(("collaborative", *TUNED_SOURCES), 1.0)
    )
    ctx = _context(data, val.train, base)
    now = float(ctx.train.timestamp.max())
    sources = ("collaborative", *TUNED_SOURCES)
    table: list[dict[str, Any]] = []
    engine = HybridEngine(base).fit(_train_data(data, ctx.train), now=now, **(fit_options or {}))
    with threadpool_limits(limits=1, user_api="blas"):
        table = _grid(engine, base, ctx, held, sources, k=k, log=log)
    table.sort(key=lambda row: -row[f"ndcg@{k}"])
    best = table[0]
    weights = dict(config.source_weights)
    weights.update({"collaborative": 1.0, **{s: best[s] for s in TUNED_SOURCES}})
    tuned = config.replace(
        source_weights=weights,
        half_life_days=best["half_life_days"],
        n_interests=best["n_interests"],
    )
    return tuned, table


def _grid(
    engine: HybridEngine,
    base: EngineConfig,
    ctx: _Context,
    held: Sequence[HeldOut],
    sources: Sequence[str],
    *,
    k: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """NDCG@k of every grid point, ranking each customer's candidate set (stage 1, generated
    once per half-life and number of interests) exactly as the engine's blend does (stage 2:
    the candidates of the weighted sources, each source max-normalised over them)."""
    data = ctx.data
    table: list[dict[str, Any]] = []
    grid = list(itertools.product(*(WEIGHT_GRID[s] for s in TUNED_SOURCES)))
    for half_life, n_interests in itertools.product(HALF_LIVES, N_INTERESTS):
        tuned = engine.with_config(base.replace(half_life_days=half_life, n_interests=n_interests))
        users: list[tuple[CandidateSet, int]] = []
        for h in held:
            events = ctx.user_events.get(h.user)
            if events is None or not len(events):
                continue
            cset = tuned.candidates(_history(data, events), now=h.time, all_sources=True)
            at = int(np.searchsorted(cset.rows, h.item))
            found = at < len(cset.rows) and int(cset.rows[at]) == h.item
            users.append((cset, at if found else -1))
        totals = np.zeros(len(grid), dtype=np.float64)
        for cset, target in users:
            if target >= 0:
                totals += _grid_ndcg(cset, target, sources, grid, k=k)
        for combo, total in zip(grid, totals, strict=True):
            table.append(
                {
                    "half_life_days": half_life,
                    "n_interests": n_interests,
                    **dict(zip(TUNED_SOURCES, combo, strict=True)),
                    f"ndcg@{k}": round(float(total) / max(len(users), 1), 5),
                }
            )
        log(f"tuned half-life {half_life} d, {n_interests} interests on {len(users)} users")
    return table


def _grid_ndcg(
    cset: CandidateSet,
    target: int,
    sources: Sequence[str],
    grid: Sequence[tuple[float, ...]],
    *,
    k: int,
) -> np.ndarray:
    """One customer's NDCG@k at every grid point (collaborative weight 1, the tuned sources'
    weights from the grid). The admitted candidates depend only on which weights are positive,
    so the normalised score matrix is built once per such pattern and re-weighted per point."""
    out = np.zeros(len(grid), dtype=np.float64)
    prepared: dict[tuple[bool, ...], tuple[np.ndarray, int] | None] = {}
    for i, combo in enumerate(grid):
        weights = np.array([1.0, *combo])
        pattern = tuple(bool(w > 0) for w in weights)
        if pattern not in prepared:
            on = {s: 1.0 for s, p in zip(sources, pattern, strict=True) if p}
            positions = cset.admitted(on)
            place = int(np.searchsorted(positions, target))
            if place >= len(positions) or positions[place] != target:
                prepared[pattern] = None
            else:
                columns = []
                for source in sources:
                    raw = cset.raw.get(source)
                    values = (
                        np.zeros(len(positions)) if raw is None else np.maximum(raw[positions], 0.0)
                    )
                    top = float(values.max()) if len(values) else 0.0
                    columns.append(values / top if top > 0 else values)
                prepared[pattern] = (np.stack(columns, axis=1), place)
        entry = prepared[pattern]
        if entry is None:
            continue
        matrix, place = entry
        scores = matrix @ weights
        # The engine orders ties by position: equal scores before the target rank above it.
        rank = (
            1 + int((scores > scores[place]).sum()) + int((scores[:place] == scores[place]).sum())
        )
        out[i] = metrics.ndcg_at_k(rank, k)
    return out
