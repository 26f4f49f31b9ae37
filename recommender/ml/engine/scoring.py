"""Stage 2 of a request: fusion of the candidate set, rules and diversity, in ranked order.

Owns :class:`Fused` (the blended scores of the admitted candidates), :func:`fuse` (each
source's raw scores normalised over the candidates, weighted and summed), and the two ways a
fused set becomes a list: :func:`rank_fused` (engine rows, for the offline evaluation) and
:func:`recommend_fused` (ranked items after the merchandising rules and MMR, before reasons,
which :mod:`.explanation` writes for the items returned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recommender.ranking.diversity import mmr_order
from recommender.ranking.fusion import Rule, apply_rules, blend
from recommender.ranking.types import SOURCES, RankedItem

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

    @property
    def profile(self) -> Profile:
        return self.cset.profile


def fuse(cset: CandidateSet, weights: Mapping[str, float] | None = None) -> Fused:
    """Blend the admitted candidates of ``cset`` (see :meth:`HybridEngine.fuse`)."""
    weights = cset.weights if weights is None else weights
    positions = cset.admitted(weights)
    sources = [s for s in cset.raw if weights.get(s, 0.0) > 0]
    total, components = blend(
        {s: cset.raw[s][positions] for s in sources}, weights, size=len(positions)
    )
    order = np.lexsort((np.arange(len(positions)), -total))
    return Fused(cset=cset, positions=positions, total=total, components=components,
                 order=order)  # fmt: skip


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
        return rows[:k]
    head = min(len(rows), max(5 * k, 50))
    chosen = mmr_order(
        scores[:head],
        np.asarray(engine._vectors[rows[:head]]),
        k=k,
        lam=cfg.mmr_lambda,
        categories=[engine.category_of(int(r)) for r in rows[:head]],
        max_per_category=cfg.max_per_category,
    )
    return rows[:head][chosen]


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
    while True:
        head.extend(ranked_item(engine, fused, int(p)) for p in order[len(head) : depth])
        items = apply_rules(head, rules)
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
    return [items[i] for i in chosen[:k]]


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
