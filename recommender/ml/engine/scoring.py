"""Stage 2 of a request: fusion of the candidate set, rules and diversity, in ranked order.

Owns :class:`Fused` (the blended scores of the admitted candidates), :func:`fuse` (each
source's raw scores normalised over the candidates, weighted and summed), and the two ways a
fused set becomes a list: :func:`rank_fused` (engine rows, for the offline evaluation) and
:func:`recommend_fused` (ranked items after the merchandising rules and MMR, before reasons,
which :mod:`.explanation` writes for the items returned). Both fill the exposure slots last
(:mod:`recommender.ranking.exposure`), from the same pool, so what is evaluated is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml.sorted_search import in_sorted
from recommender.ranking.diversity import mmr_order
from recommender.ranking.exposure import exposure_positions, place_exposure
from recommender.ranking.fusion import Rule, apply_rules, blend
from recommender.ranking.types import SOURCES, RankedItem

from . import config
from .candidates import CandidateSet, Profile

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# Sources by preference where their scores tie.
SOURCE_ORDER = {source: i for i, source in enumerate(SOURCES)}


@dataclass
class Fused:
    cset: CandidateSet
    positions: np.ndarray  # admitted candidate positions
    total: np.ndarray  # blended score per admitted position
    components: dict[str, np.ndarray]
    order: np.ndarray  # indices into ``positions``, best first
    # The exposure pool: indices into ``positions`` of the products without behaviour that may
    # fill an exposure slot, best first, and the slots per run of positions (0: none).
    exposure: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    exposure_slots: int = 0

    @property
    def profile(self) -> Profile:
        return self.cset.profile


def fuse(
    cset: CandidateSet,
    weights: Mapping[str, float] | None = None,
    *,
    exposure_slots: int = 0,
    exposure_min_score: float = 0.0,
) -> Fused:
    """Blend the admitted candidates of ``cset`` (see :meth:`HybridEngine.fuse`).

    With ``exposure_slots``, the ``exposure`` source's candidates whose raw score (the exposure
    score: :class:`~recommender.ml.engine.EngineConfig`) is at least ``exposure_min_score`` form
    the exposure pool, best first. Those no weighted source admitted join ``positions`` with a
    blended score of 0 and stay out of ``order``: they reach a list only through a slot, and the
    blend of the others (normalised over the admitted candidates only) does not change."""
    weights = cset.weights if weights is None else weights
    admitted = cset.admitted(weights)
    positions = admitted
    pool = np.empty(0, dtype=np.int64)
    if exposure_slots > 0 and "exposure" in cset.tops:
        tops = cset.tops["exposure"]
        score = cset.raw["exposure"][tops]
        keep = score >= exposure_min_score
        tops, score = tops[keep], score[keep]
        pool = tops[np.lexsort((tops, -score))]
        positions = np.union1d(admitted, pool).astype(np.int64)
    blended = in_sorted(admitted, positions) if len(pool) else np.ones(len(positions), dtype=bool)
    sources = [s for s in cset.raw if weights.get(s, 0.0) > 0]
    total, components = blend(
        {s: np.where(blended, cset.raw[s][positions], 0.0) for s in sources},
        weights,
        size=len(positions),
    )
    order = np.lexsort((np.arange(len(positions)), -total))
    return Fused(cset=cset, positions=positions, total=total, components=components,
                 order=order[blended[order]],
                 exposure=np.searchsorted(positions, pool).astype(np.int64),
                 exposure_slots=exposure_slots if len(pool) else 0)  # fmt: skip


def _exposure_pool(fused: Fused, k: int, *, skip: int = 0) -> np.ndarray:
    """The first places of the exposure pool a list of ``k`` may need: one per exposure
    position, and ``skip`` more (pool products already listed, or removed by a rule)."""
    needed = len(exposure_positions(k, fused.exposure_slots, run=config.EXPOSURE_RUN))
    return fused.exposure[: needed + skip] if needed else fused.exposure[:0]


def _is_cold(engine: HybridEngine, rows: np.ndarray) -> np.ndarray:
    """Whether each engine row (-1: a product newer than the fit) has no behaviour at the fit."""
    rows = np.asarray(rows, dtype=np.int64)
    cold = rows < 0
    known = ~cold
    cold[known] = ~np.asarray(engine._has_events[rows[known]], dtype=bool)
    return cold


def rank_fused(engine: HybridEngine, fused: Fused, *, k: int) -> np.ndarray:
    """The top ``k`` engine rows of a fused candidate set, diversity applied."""
    cset = fused.cset
    n_rows = len(cset.rows)
    order = fused.order
    known = fused.positions[order] < n_rows
    ranked = fused.positions[order][known]
    scores = fused.total[order][known]
    rows = cset.rows[ranked]
    cfg = engine.config
    if cfg.mmr_lambda >= 1.0 and cfg.max_per_category is None:
        listed = rows[:k]
    else:
        head = min(len(rows), max(5 * k, 50))
        chosen = mmr_order(
            scores[:head],
            np.asarray(engine._vectors[rows[:head]]),
            k=k,
            lam=cfg.mmr_lambda,
            categories=[engine.category_of(int(r)) for r in rows[:head]],
            max_per_category=cfg.max_per_category,
        )
        listed = rows[:head][chosen]
    if not fused.exposure_slots:
        return listed
    pool_positions = fused.positions[_exposure_pool(fused, k, skip=len(listed))]
    pool = cset.rows[pool_positions[pool_positions < n_rows]]
    placed = place_exposure(listed.tolist(), _is_cold(engine, listed).tolist(), pool.tolist(),
                            k=k, slots=fused.exposure_slots, run=config.EXPOSURE_RUN)  # fmt: skip
    return np.array([row for row, _ in placed], dtype=np.int64)


def recommend_fused(
    engine: HybridEngine, fused: Fused, *, k: int, rules: Sequence[Rule]
) -> list[RankedItem]:
    """The best ``k`` items of ``fused`` after ``rules`` and diversity, without reasons."""
    cfg = engine.config
    order = fused.order
    size = len(order)
    reorders = bool(rules) or cfg.mmr_lambda < 1.0 or cfg.max_per_category is not None
    # Rules and diversity look past the first k; without them the fused order is final.
    depth = min(size, max(5 * k, 50) if reorders else k)
    # Items without reasons for the head (rules and diversity need scores and sources only);
    # reasons cost a lookup each, so only the k returned get them.
    head: list[RankedItem] = []
    # The exposure pool goes through the rules with the head (a filtered product fills no slot),
    # behind it, and leaves again before diversity: MMR sees the head only.
    pool = [ranked_item(engine, fused, int(p)) for p in _exposure_pool(fused, k, skip=k)]
    pool_ids = {item.product_id for item in pool}
    ruled_pool: list[RankedItem] = []
    while True:
        head.extend(ranked_item(engine, fused, int(p)) for p in order[len(head) : depth])
        in_head = {item.product_id for item in head}
        behind = [item for item in pool if item.product_id not in in_head]
        ruled = apply_rules(head + behind, rules)
        outside = {item.product_id for item in behind}
        items = [item for item in ruled if item.product_id not in outside]
        ruled_pool = [item for item in ruled if item.product_id in pool_ids]
        # A filter that removed most of the head (a brand that dominates it, everything
        # out of stock): look deeper rather than return a short list.
        if len(items) >= k or depth >= size:
            break
        depth = min(size, depth * 4)
    if not reorders:
        chosen = list(range(len(items)))  # MMR at lambda 1 keeps the fused order.
    else:
        vectors = (
            np.stack([engine._vector_of(item.index) for item in items])
            if items
            else np.zeros((0, 1))
        )
        chosen = mmr_order(
            np.array([item.score for item in items]),
            vectors,
            k=k,
            lam=cfg.mmr_lambda,
            categories=[engine.category_of(item.index) for item in items],
            max_per_category=cfg.max_per_category,
        )
    listed = [items[i] for i in chosen[:k]]
    if not fused.exposure_slots:
        return listed
    return _with_exposure(engine, listed, ruled_pool, pool_order=pool, k=k,
                          slots=fused.exposure_slots)  # fmt: skip


def _with_exposure(
    engine: HybridEngine,
    listed: list[RankedItem],
    ruled_pool: list[RankedItem],
    *,
    pool_order: list[RankedItem],
    k: int,
    slots: int,
) -> list[RankedItem]:
    """``listed`` with its exposure slots filled from the pool (in the pool's order, what the
    rules kept of it); a slotted item names ``exposure`` as its first source."""
    kept = {item.product_id: item for item in ruled_pool}
    pool = [kept[item.product_id] for item in pool_order if item.product_id in kept]
    by_id = {item.product_id: item for item in (*listed, *pool)}
    cold = _is_cold(engine, np.array([item.index for item in listed], dtype=np.int64))
    placed = place_exposure([item.product_id for item in listed], cold.tolist(),
                            [item.product_id for item in pool], k=k, slots=slots,
                            run=config.EXPOSURE_RUN)  # fmt: skip
    out = []
    for product_id, slotted in placed:
        item = by_id[product_id]
        if slotted:
            others = tuple(s for s in item.sources if s != "exposure")
            item = replace(item, sources=("exposure", *others))
        out.append(item)
    return out


def ranked_item(engine: HybridEngine, fused: Fused, place: int) -> RankedItem:
    """The fused candidate at ``place`` (an index into ``fused.positions``), without
    reasons (see :func:`recommender.ml.engine.explanation.with_reasons`)."""
    cset = fused.cset
    position = int(fused.positions[place])
    if position < len(cset.rows):
        index = int(cset.rows[position])
        product_id = int(engine._ids[index])
    else:
        index = -1
        product_id = cset.extra_ids[position - len(cset.rows)]
    comps = {s: float(c[place]) for s, c in fused.components.items() if c[place] > 0}
    sources = tuple(sorted(comps, key=lambda s: (-comps[s], SOURCE_ORDER[s])))
    return RankedItem(
        index=index,
        product_id=product_id,
        score=float(fused.total[place]),
        sources=sources,
        components=comps,
        reasons=(),
    )
