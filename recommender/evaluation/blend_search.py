"""Budgeted search of the blend on a shop's own validation split: what every fit runs
(``recommender.services.autotune``) and what ``manage.py evaluate`` runs on its training split.

The searched settings are the fusion's request-time ones: the semantic, popularity and trending
weights (collaborative is the reference, weight 1: only ratios matter), the history half-life
and the number of interests. Candidate sets depend on the half-life and the number of interests
only, and re-weighting a candidate set is cheap, so the search is two-level:

- **Successive halving over (half-life, interests) pairs on growing customer samples**: every
  pair is scored on a first sample of customers (``FIRST_RUNG`` customers), the best third go on
  to a sample three times larger, and so on up to ``max_users``. The active configuration's pair
  always goes on, so the comparison that decides is made on the same customers.
- **Every weight point on each pair**: the grid of ``blend_tuning`` plus ``random_points``
  seeded random draws (zero with probability 0.3, else log-uniform), scored per customer from
  one normalised score matrix.

The search stops starting work when ``budget_seconds`` is spent; the result is chosen on the
largest sample on which the active pair was scored. Locked settings stay at the active
configuration's values. Framework-free: no Django, no database.

**Serving cost.** Points differ in what a list costs to serve: each interest is one more index
search and a clustering step, and popularity or trending on widen the candidate set (on Online
Retail the three-interest version took a list 1.5x as long as the point chosen within 1% of it:
``bench/request_cost.py --versions``, docs/benchmarks.md). So the result is not the best point
outright but the *cheapest* point whose NDCG@k is within ``cost_tolerance`` (relative) of the
best on the same customers: fewest interests first, then fewest of the tuned sources on, then
the best score. ``cost_tolerance=0`` takes the best point whatever it costs.

**Candidate depth.** The candidates each source proposes (``candidates_per_source``) are the
last cost the search weighs: every deeper list is more index search and more candidates to
score (at 100k products, 100 instead of 200 cost a list 20% less engine time:
``bench/engine_arms.py --candidates``), and beyond the first hundred or so the products it adds
rarely reach the top 10. Once the point is chosen, it is scored at each depth of
``DEPTHS`` (and the active one) on the same customers, and the shallowest depth within
``cost_tolerance`` of the best of them (and of the best point overall) is taken. Only the
blend's sources are in the validation engine, so the depth is judged on them; the sequential,
session and social sources take the same depth. Skipped when the budget is spent or the setting
is locked.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.ml.engine import AnnSearch, EngineConfig, EngineData, HybridEngine
from recommender.ml.engine.candidates import search_for

from .blend_tuning import HALF_LIVES, N_INTERESTS, TUNED_SOURCES, WEIGHT_GRID, _grid_ndcg
from .rankers import _context, _history, _train_data, masked_config
from .splits import validation_sample

# The settings the search may change; a merchandiser can lock each of them.
SEARCHED = (
    *(f"source_weights.{s}" for s in TUNED_SOURCES),
    "half_life_days",
    "n_interests",
    "candidates_per_source",
)
# The candidate depths scored for the chosen point, besides the active configuration's own.
DEPTHS = (50, 100, 200)
FIRST_RUNG = 250
MIN_USERS = 50  # Fewer validation customers than this: too little to learn from.
_SOURCES = ("collaborative", *TUNED_SOURCES)


@dataclass(frozen=True)
class AutotuneSpec:
    """How a fit learns from the shop: the search's time budget, the gain a new point (or the
    reranker) needs over what it replaces, the settings it must leave alone, and whether it
    learns a reranker."""

    budget_seconds: float
    min_gain: float
    locked: tuple[str, ...] = ()
    rerank: bool = True  # Also learn the reranker, kept where it beats the blend.
    cost_tolerance: float = 0.0  # The cheapest point within this of the best (search_blend).


class TooLittleData(Exception):
    """The shop has too few customers with a validation product to tune on."""


@dataclass
class BlendSearch:
    """What a search found, and what it compared (NDCG@k on the same validation customers)."""

    config: EngineConfig  # The chosen point (the active configuration with the searched fields).
    best_ndcg: float  # The chosen point's score.
    active_ndcg: float
    users: int  # Validation customers of the deciding comparison.
    points: int  # (pair, weight point) combinations scored on some sample.
    rungs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    budget_exhausted: bool = False
    best_point: dict[str, float] = field(default_factory=dict)
    # The best score of any point; the chosen one is the cheapest within the tolerance of it.
    top_ndcg: float = 0.0
    cost_tolerance: float = 0.0

    @property
    def gain(self) -> float:
        """Relative gain of the chosen point over the active configuration (0 when equal)."""
        return _relative(self.best_ndcg, self.active_ndcg)

    @property
    def top_gain(self) -> float:
        """Relative gain of the best point found over the active configuration."""
        return _relative(self.top_ndcg, self.active_ndcg)

    def as_dict(self) -> dict[str, Any]:
        return {
            "best_ndcg": round(self.best_ndcg, 5),
            "active_ndcg": round(self.active_ndcg, 5),
            "gain": None if math.isinf(self.gain) else round(self.gain, 5),
            "users": self.users,
            "points": self.points,
            "rungs": self.rungs,
            "seconds": round(self.seconds, 1),
            "budget_exhausted": self.budget_exhausted,
            "best_point": self.best_point,
            "top_ndcg": round(self.top_ndcg, 5),
            "cost_tolerance": self.cost_tolerance,
        }


def _relative(value: float, base: float) -> float:
    if base <= 0:
        return math.inf if value > 0 else 0.0
    return value / base - 1.0


def serving_cost(config: EngineConfig) -> tuple[int, int, int]:
    """How expensive a configuration's lists are to serve, as the search ranks it: (interests,
    tuned sources on, candidates per source). Each interest is an index search and a clustering
    step; each source on widens the candidate set; a deeper list per source is a longer search
    and more candidates to score. Lower is cheaper."""
    weights = config.source_weights
    sources_on = sum(1 for s in TUNED_SOURCES if weights.get(s, 0.0) > 0)
    return int(config.n_interests), sources_on, int(config.candidates_per_source)


def cheaper_to_serve(found: BlendSearch, active: EngineConfig) -> bool:
    """Whether the chosen point serves more cheaply than ``active`` and scores within the
    search's cost tolerance of it (the trade the search itself makes: from an expensive active
    point, the search ends where it would have ended from a cheap one)."""
    return serving_cost(found.config) < serving_cost(active) and (
        found.best_ndcg >= found.active_ndcg * (1.0 - found.cost_tolerance)
    )


def search_verdict(found: BlendSearch, *, active: EngineConfig, min_gain: float) -> str | None:
    """Why the chosen point must not replace ``active`` (None: it wins). It wins when it differs
    and scores above the active point while the best point found beats the active one by more
    than ``min_gain`` (relative NDCG@k) on the same validation customers (the search found a
    better region, and the chosen point is its cheapest representative), or when it is cheaper
    to serve (:func:`serving_cost`) and within the search's cost tolerance of the active point;
    what ``train`` activates and what ``evaluate`` reports as ``hybrid`` follow this one
    rule."""
    figures = (
        f"the best point found scored {found.best_ndcg:.4f} NDCG@10 on validation against "
        f"the active configuration's {found.active_ndcg:.4f} ({found.users} customers)"
    )
    if found.config != active:
        if found.best_ndcg > found.active_ndcg and found.top_gain > min_gain:
            return None
        if cheaper_to_serve(found, active):
            return None
    return f"{figures}, below the {min_gain:.0%} gain needed"


def _weight_points(
    active: EngineConfig, locked: Collection[str], *, random_points: int, seed: int
) -> np.ndarray:
    """Rows of (collaborative, semantic, popularity, trending) weights: the active point first
    (its own weights), then the grid and ``random_points`` seeded draws with collaborative at 1
    and each locked weight held at its active ratio to collaborative."""
    weights = active.source_weights
    collab = float(weights.get("collaborative", 0.0))
    rng = np.random.default_rng(seed)
    grids: list[tuple[float, ...]] = []
    draws: list[np.ndarray] = []
    for source in TUNED_SOURCES:
        if f"source_weights.{source}" in locked:
            fixed = float(weights.get(source, 0.0)) / collab if collab > 0 else 0.0
            grids.append((fixed,))
            draws.append(np.full(random_points, fixed))
            continue
        grid = WEIGHT_GRID[source]
        values = np.exp(rng.uniform(np.log(0.01), np.log(1.5 * max(grid)), size=random_points))
        values[rng.random(random_points) < 0.3] = 0.0
        grids.append(grid)
        draws.append(values)
    searched = [(1.0, *combo) for combo in itertools.product(*grids)]
    searched += [(1.0, *row) for row in np.stack(draws, axis=1).round(4).tolist()]
    active_row = (collab, *(float(weights.get(s, 0.0)) for s in TUNED_SOURCES))
    unique = list(dict.fromkeys(tuple(row) for row in searched))
    return np.array([active_row, *unique], dtype=np.float64)


def search_blend(
    data: EngineData,
    *,
    config: EngineConfig,
    locked: Collection[str] = (),
    budget_seconds: float = 120.0,
    base: np.ndarray | None = None,
    min_items: int = 3,
    max_users: int = 3000,
    random_points: int = 64,
    seed: int = 0,
    k: int = 10,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[float], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
    cost_tolerance: float = 0.0,
    search: AnnSearch | None = None,
) -> BlendSearch:
    """Search the blend on the validation split of ``data`` (each customer's last product, or,
    with ``base``, the last product within that training mask: ``evaluate`` passes its test
    split's training mask, so the test items are never seen). ``config`` is the active
    configuration: its point is scored on the same customers as the best one. The point chosen
    is the cheapest to serve within ``cost_tolerance`` of the best score (module docstring).
    Raises :class:`TooLittleData` below ``MIN_USERS`` validation customers. ``search``: the
    validation candidates' vector search (the serving index, for a large catalogue); without it
    the validation engine searches its own vectors."""
    started = time.perf_counter()
    inter = data.interactions
    val, held = validation_sample(
        inter, base=base, min_items=min_items, max_users=max_users, seed=seed
    )
    if len(val.held_out) < MIN_USERS:
        raise TooLittleData(
            f"{len(val.held_out)} customers have a validation product (at least {min_items} "
            f"distinct products each); at least {MIN_USERS} are needed to tune on"
        )
    base_config = masked_config(config, inter).replace(source_weights=dict.fromkeys(_SOURCES, 1.0))
    ctx = _context(data, val.train, base_config)
    now = float(ctx.train.timestamp.max())
    engine = HybridEngine(base_config).fit(
        _train_data(data, ctx.train), now=now, **(fit_options or {})
    )
    log(f"validation: {len(held)} customers; fitted in {time.perf_counter() - started:.1f} s")
    # Every (half-life, interests) pair scores a copy of this engine; they share one search:
    # the one given, else the engine's own, built here once (a copy would build its own).
    search = search_for(engine, search)
    active_pair = (float(config.half_life_days), int(config.n_interests))
    lives = (active_pair[0],) if "half_life_days" in locked else HALF_LIVES
    interests = (active_pair[1],) if "n_interests" in locked else N_INTERESTS
    pairs = [active_pair] + [
        (float(h), int(n)) for h in lives for n in interests if (float(h), int(n)) != active_pair
    ]
    halving = _Halving(
        engine=engine,
        base_config=base_config,
        ctx=ctx,
        held=held,
        pairs=pairs,
        points=_weight_points(config, locked, random_points=random_points, seed=seed),
        deadline=started + budget_seconds,
        k=k,
        search=search,
    )
    size, means = halving.run(log=log, progress=progress)
    top = max(float(row.max()) for row in means.values())
    floor = top * (1.0 - cost_tolerance)
    best_pair, best_index, best_value = _cheapest(
        means, halving.points, active_pair=active_pair, floor=floor
    )
    depth = int(config.candidates_per_source)
    if "candidates_per_source" not in locked and not halving.exhausted:
        by_depth = halving.depths(best_pair, best_index, size, active=depth, value=best_value)
        top = max(top, *by_depth.values())
        depth = _shallowest(by_depth, floor=top * (1.0 - cost_tolerance))
        best_value = by_depth[depth]
        log(f"candidates per source: {by_depth} scored; {depth} chosen")
    weights = dict(config.source_weights)
    if best_index != 0:  # The active point keeps its own weights, collaborative included.
        chosen = (round(float(w), 4) for w in halving.points[best_index])
        weights.update(dict(zip(_SOURCES, chosen, strict=True)))
    progress(1.0)
    return BlendSearch(
        config=config.replace(
            source_weights=weights,
            half_life_days=best_pair[0],
            n_interests=best_pair[1],
            candidates_per_source=depth,
        ),
        best_ndcg=best_value,
        active_ndcg=float(means[active_pair][0]),
        users=size,
        points=len(halving.points) * sum(1 for rows in halving.scored.values() if rows),
        rungs=halving.rungs,
        seconds=time.perf_counter() - started,
        budget_exhausted=halving.exhausted,
        best_point={
            **{s: float(weights.get(s, 0.0)) for s in _SOURCES},
            "half_life_days": best_pair[0],
            "n_interests": best_pair[1],
            "candidates_per_source": depth,
        },
        top_ndcg=top,
        cost_tolerance=cost_tolerance,
    )


def _cheapest(
    means: Mapping[tuple[float, int], np.ndarray],
    points: np.ndarray,
    *,
    active_pair: tuple[float, int],
    floor: float,
) -> tuple[tuple[float, int], int, float]:
    """(pair, weight point, score) of the cheapest point scoring at least ``floor``: fewest
    interests, then fewest tuned sources on, then the best score; on a tie, the active
    configuration's pair and point before the others (a change must buy something), then the
    search order."""
    sources_on = (points[:, 1:] > 0).sum(axis=1)
    best: tuple[tuple[Any, ...], tuple[float, int], int, float] | None = None
    for order, (pair, row) in enumerate(means.items()):
        for index in np.flatnonzero(row >= floor - 1e-12).tolist():
            value = float(row[index])
            key = (pair[1], int(sources_on[index]), -round(value, 12),
                   (pair, index) != (active_pair, 0), order, index)  # fmt: skip
            if best is None or key < best[0]:
                best = (key, pair, int(index), value)
    assert best is not None  # The best point itself is above the floor.
    return best[1], best[2], best[3]


def _shallowest(by_depth: Mapping[int, float], *, floor: float) -> int:
    """The smallest depth scoring at least ``floor`` (the deepest scored when none does)."""
    within = [depth for depth, value in by_depth.items() if value >= floor - 1e-12]
    return min(within) if within else max(by_depth)


class _Halving:
    """Successive halving of the (half-life, interests) pairs over growing customer samples;
    the first pair (the active one) is scored on every sample."""

    def __init__(
        self,
        *,
        engine: HybridEngine,
        base_config: EngineConfig,
        ctx: Any,
        held: list[Any],
        pairs: list[tuple[float, int]],
        points: np.ndarray,
        deadline: float,
        k: int,
        search: AnnSearch | None,
    ) -> None:
        self.engine, self.base_config, self.ctx, self.held = engine, base_config, ctx, held
        self.pairs, self.points, self.deadline, self.k = pairs, points, deadline, k
        self.search = search
        # Per pair: one row of NDCG@k over the weight points per customer scored so far.
        self.scored: dict[tuple[float, int], list[np.ndarray]] = {p: [] for p in pairs}
        self.rungs: list[dict[str, Any]] = []
        self.exhausted = False

    def run(
        self, *, log: Callable[[str], None], progress: Callable[[float], None]
    ) -> tuple[int, dict[tuple[float, int], np.ndarray]]:
        """(customers, mean NDCG row per pair) of the largest sample the active pair reached."""
        sizes = _rung_sizes(len(self.held))
        work = sum(s * math.ceil(len(self.pairs) / 3**i) for i, s in enumerate(sizes))
        done, alive = 0, list(self.pairs)
        deciding: tuple[int, dict[tuple[float, int], np.ndarray]] | None = None
        with threadpool_limits(limits=1, user_api="blas"):
            for size in sizes:
                means: dict[tuple[float, int], np.ndarray] = {}
                for pair in alive:
                    # The active pair on the first sample is always scored: the comparison.
                    first = size == sizes[0] and pair == self.pairs[0]
                    if not first and time.perf_counter() > self.deadline:
                        self.exhausted = True
                        break
                    done += self._score(pair, size)
                    progress(min(done / max(work, 1), 0.99))
                    means[pair] = np.mean(self.scored[pair][:size], axis=0)
                if self.pairs[0] not in means:
                    break  # The budget ran out before the active pair: the last sample decides.
                # With the budget spent mid-sample, the pairs not reached do not compete on it.
                deciding = (size, means)
                best_of = {pair: float(row.max()) for pair, row in means.items()}
                best = round(max(best_of.values()), 5)
                self.rungs.append({"customers": size, "pairs": len(means), "best": best})
                log(f"{size} customers: {len(means)} (half-life, interests) pairs scored")
                if self.exhausted:
                    break
                ranked = [p for p in sorted(means, key=lambda p: -best_of[p]) if p != self.pairs[0]]
                alive = [self.pairs[0], *ranked[: max(1, math.ceil(len(alive) / 3) - 1)]]
        assert deciding is not None  # The active pair is always scored on the first sample.
        return deciding

    def depths(
        self, pair: tuple[float, int], index: int, size: int, *, active: int, value: float
    ) -> dict[int, float]:
        """Mean NDCG@k of weight point ``index`` on ``pair`` over the first ``size`` customers,
        at the ``active`` depth (its known ``value``) and every other depth of ``DEPTHS``
        scored before the deadline, shallowest first."""
        scores = {active: value}
        point = self.points[index : index + 1]
        with threadpool_limits(limits=1, user_api="blas"):
            for depth in sorted(set(DEPTHS) - {active}):
                if time.perf_counter() > self.deadline:
                    self.exhausted = True
                    break
                tuned = self._tuned(pair, candidates_per_source=depth)
                rows = [
                    _user_row(tuned, self.ctx, h, point, k=self.k, search=self.search)[0]
                    for h in self.held[:size]
                ]
                mean = float(np.mean(rows))
                # The same lists as at the active depth give its score (the sum, in another
                # order, can differ in the last bits).
                scores[depth] = value if abs(mean - value) <= 1e-12 else mean
        return dict(sorted(scores.items()))

    def _tuned(self, pair: tuple[float, int], **settings: Any) -> HybridEngine:
        """The validation engine with ``pair``'s half-life and interests (and ``settings``)."""
        return self.engine.with_config(
            self.base_config.replace(half_life_days=pair[0], n_interests=pair[1], **settings)
        )

    def _score(self, pair: tuple[float, int], size: int) -> int:
        rows = self.scored[pair]
        have = len(rows)
        if have >= size:
            return 0
        tuned = self._tuned(pair)
        for h in self.held[have:size]:
            rows.append(_user_row(tuned, self.ctx, h, self.points, k=self.k, search=self.search))
        return size - have


def _rung_sizes(n: int) -> list[int]:
    sizes = [min(n, FIRST_RUNG)]
    while sizes[-1] < n:
        sizes.append(min(n, sizes[-1] * 3))
    return sizes


def _user_row(
    engine: HybridEngine,
    ctx: Any,
    h: Any,
    points: np.ndarray,
    *,
    k: int,
    search: AnnSearch | None,
) -> np.ndarray:
    """One validation customer's NDCG@k at every weight point (0 where the product is not
    among the candidates, or the customer has no training history)."""
    events = ctx.user_events.get(h.user)
    if events is None or not len(events):
        return np.zeros(len(points))
    cset = engine.candidates(_history(ctx.data, events), now=h.time, ann=search, all_sources=True)
    at = int(np.searchsorted(cset.rows, h.item))
    if at >= len(cset.rows) or int(cset.rows[at]) != h.item:
        return np.zeros(len(points))
    return _grid_ndcg(cset, at, _SOURCES, points, k=k)
