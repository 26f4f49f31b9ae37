"""Why: the reasons written on recommended items, and the customer inspector's explanation.

Owns :func:`with_reasons` (one human-readable reason per source that proposed an item, worded
by :mod:`recommender.ranking.reasons`: the history product that contributed most to a
collaborative score, the event behind the nearest interest, the session product...) and
:func:`explain` (each source's best candidates with raw and weighted scores, the weights in
effect, the exclusions and the interests), with their result types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml import neighbours as nb
from recommender.ranking import reasons as reason_text
from recommender.ranking.types import RankedItem

from .candidates import CandidateSet, Profile
from .scoring import SOURCE_ORDER
from .social import supporters_reason

if TYPE_CHECKING:
    from .hybrid import HybridEngine


@dataclass(frozen=True, slots=True)
class SourceCandidate:
    """One candidate of one source in :meth:`HybridEngine.explain`.

    ``raw``: the source's own score (cosine, collaborative sum, decayed count...); ``weighted``:
    the source weight x the raw score normalised over the candidate set, i.e. its part of
    ``fused``, the item's blended score; ``fused_rank``: 1-based place in the fused order (0 for
    an exposure candidate outside it, which only an exposure slot can show).
    """

    product_id: int
    raw: float
    weighted: float
    fused: float
    fused_rank: int


@dataclass(frozen=True, slots=True)
class Explanation:
    """What the engine saw for one history (see :meth:`HybridEngine.explain`)."""

    weights: dict[str, float]  # Source weights in effect (> 0), after the cold-customer rule.
    sources: dict[str, list[SourceCandidate]]  # Best candidates per source, best first.
    candidates: int  # Size of the fused candidate set.
    excluded: tuple[int, ...]  # Product ids never recommended to this history.
    history_weights: tuple[tuple[int, float], ...]  # Heaviest products: (id, decayed weight).
    category_weights: tuple[tuple[str, float], ...]  # Categories by summed weight.
    interests: tuple[tuple[float, tuple[tuple[str, str], ...]], ...]  # (share, [(type, title)])


def with_reasons(
    engine: HybridEngine, items: list[RankedItem], cset: CandidateSet
) -> list[RankedItem]:
    """``items`` with their reasons: one per source that proposed each, in the item's order
    of sources (duplicates once), or "popular" when none has anything to say."""
    best_source = _collaborative_contributors(
        cset, [item.index for item in items if "collaborative" in item.sources]
    )
    out = []
    for item in items:
        # An exposure slot's reason already names the nearest history event, as the semantic
        # source's would.
        sources = item.sources
        if "exposure" in sources:
            sources = tuple(source for source in sources if source != "semantic")
        reasons = tuple(
            dict.fromkeys(
                _social_reason(engine, item.index, cset)
                if source == "social"
                else _reason(engine, source, item.index, cset.profile, best_source, cset.latest)
                for source in sources
            )
        )
        if not reasons:
            category = engine.category_of(item.index)
            reasons = (reason_text.popular_in(category=category, trending=False),)
        out.append(replace(item, reasons=reasons))
    return out


def _social_reason(engine: HybridEngine, index: int, cset: CandidateSet) -> str:
    """ "3 people you follow bought this": how many of the network touched the item, named only
    when the network carries display names (a shop setting, off by default)."""
    supporters = cset.social.supporters.get(index)
    if not supporters:
        return reason_text.popular_in(category=engine.category_of(index), trending=False)
    count, relation, kind, names = supporters_reason(
        cset.profile.network, supporters, engine.config.behaviour_weights
    )
    return reason_text.network_activity(count=count, relation=relation, event_type=kind,
                                        names=names)  # fmt: skip


def _collaborative_contributors(cset: CandidateSet, rows: list[int]) -> dict[int, int]:
    """For each of ``rows``, the history row that contributed most to its collaborative
    score (from the neighbour entries gathered in stage 1)."""
    cols, values, sources = cset.collaborative_entries
    wanted = np.array([r for r in rows if r >= 0], dtype=np.int64)
    if not len(wanted) or not len(cols):
        return {}
    mask = np.isin(cols, wanted)
    best: dict[int, tuple[float, int]] = {}
    for col, value, source in zip(cols[mask].tolist(), values[mask].tolist(),
                                  sources[mask].tolist(), strict=True):  # fmt: skip
        if value > best.get(col, (-np.inf, -1))[0]:
            best[col] = (value, source)
    return {col: source for col, (_, source) in best.items()}


def _nearest_event(engine: HybridEngine, index: int, profile: Profile) -> int:
    """The history event whose vector is nearest to the product's; for a product the engine
    does not know (or without a vector), the heaviest interest's best event."""
    vector = engine._vector_of(index)
    if index < 0 or not vector.any():
        return profile.interests[0].members[0] if profile.interests else 0
    return int(np.argmax(profile.event_vectors @ vector))


def _reason(
    engine: HybridEngine,
    source: str,
    index: int,
    profile: Profile,
    best_source: Mapping[int, int],
    latest: tuple[int, str] | None = None,
) -> str:
    category = engine.category_of(index)
    if source == "collaborative" and index in best_source:
        best = best_source[index]
        return reason_text.because_you(
            event_type=profile.strongest_type.get(best, "view"), title=engine._titles[best]
        )
    if source == "semantic" and len(profile.event_vectors):
        kind, title = profile.label(_nearest_event(engine, index, profile))
        if kind == "search" and title:
            return reason_text.matches_search(query=title)
        return reason_text.similar_to(event_type=kind, title=title)
    if source == "session" and index >= 0 and len(profile.context):
        ctx = profile.context
        vector = engine._vector_of(index)
        best = int(ctx[int(np.argmax(np.asarray(engine._vectors[ctx]) @ vector))])
        cols, values = engine._cooc.row(best)
        title = engine._titles[best]
        if nb.lookup(cols.astype(np.int64), values, np.array([index]))[0] > 0:
            return reason_text.bought_together(title=title)
        return reason_text.goes_with(title=title)
    if source == "exposure" and len(profile.event_vectors):
        # "new: similar to what you bought: X".
        kind, title = profile.label(_nearest_event(engine, index, profile))
        return reason_text.new_similar_to(event_type=kind, title=title)
    if source == "sequential" and latest is not None:
        row, kind = latest
        if category and engine.category_of(row) == category:
            return reason_text.continues_recent(event_type=kind, category=category)
        return reason_text.often_after(event_type=kind, title=engine._titles[row])
    if source == "trending":
        return reason_text.popular_in(category=category, trending=True)
    if source == "new_arrivals":
        return reason_text.new_arrival(category=category)
    return reason_text.popular_in(category=category, trending=False)


def explain(
    engine: HybridEngine, cset: CandidateSet, *, per_source: int, top_history: int
) -> Explanation:
    """What stage 2 makes of ``cset``, source by source (see :meth:`HybridEngine.explain`)."""
    fused = engine.fuse(cset)
    profile = cset.profile
    sources: dict[str, list[SourceCandidate]] = {}
    n_candidates = len(fused.positions)
    # 0 for an exposure candidate outside the blend's order (it can only fill a slot).
    rank_of = np.full(n_candidates, -1, dtype=np.int64)
    rank_of[fused.order] = np.arange(len(fused.order))
    n_rows = len(cset.rows)
    for source, part in fused.components.items():
        places = np.flatnonzero(part > 0)
        best = places[np.lexsort((places, -part[places]))][:per_source]
        raw = cset.raw[source]
        out = []
        for place in best:
            place = int(place)
            position = int(fused.positions[place])
            if position < n_rows:
                pid = int(engine._ids[cset.rows[position]])
                value = float(raw[position])
            else:
                pid = cset.extra_ids[position - n_rows]
                value = 0.0  # Known only to the ann search; its score is in ``weighted``.
            out.append(
                SourceCandidate(
                    product_id=pid,
                    raw=value,
                    weighted=float(part[place]),
                    fused=float(fused.total[place]),
                    fused_rank=int(rank_of[place]) + 1,
                )
            )
        sources[source] = out
    if "exposure" not in sources and fused.exposure_slots:
        # The exposure pool (no weight in the blend): its best, by exposure score, for the slots.
        raw = cset.raw["exposure"]
        out = []
        for place in fused.exposure[:per_source].tolist():
            position = int(fused.positions[place])
            known = position < n_rows
            out.append(
                SourceCandidate(
                    product_id=int(engine._ids[cset.rows[position]])
                    if known
                    else cset.extra_ids[position - n_rows],
                    raw=float(raw[position]),
                    weighted=0.0,
                    fused=float(fused.total[place]),
                    fused_rank=int(rank_of[place]) + 1,
                )
            )
        sources["exposure"] = out
    order = np.lexsort((profile.rows, -profile.weights))[:top_history]
    categories: dict[str, float] = {}
    for row, weight in zip(profile.rows.tolist(), profile.weights.tolist(), strict=True):
        name = engine.category_of(row)
        if name:
            categories[name] = categories.get(name, 0.0) + float(weight)
    return Explanation(
        weights={s: float(w) for s, w in cset.weights.items() if w > 0},
        sources=dict(sorted(sources.items(), key=lambda kv: SOURCE_ORDER[kv[0]])),
        candidates=n_candidates,
        excluded=tuple(sorted(cset.excluded)),
        history_weights=tuple(
            (int(engine._ids[profile.rows[i]]), float(profile.weights[i])) for i in order
        ),
        category_weights=tuple(
            sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:top_history]
        ),
        interests=tuple(
            (
                float(interest.weight),
                tuple(profile.label(m) for m in interest.members[:5]),
            )
            for interest in profile.interests
        ),
    )
