"""Stage 1 of a request: what the engine knows about the customer, and the candidate set.

Owns :class:`Profile` (the history read once: weights per product, interests, session context),
the source weights in effect (the cold-customer rule), the products never shown again
(:func:`excluded_ids`, also what pins and promotions must not insert), the semantic search
(``ann`` or, offline, the engine's own), and :func:`candidate_set`, which asks each source of
:mod:`.sources` for its best candidates and scores every candidate by every source
(:class:`CandidateSet`, stage 2's input).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml.arrays import StringTable
from recommender.ml.collaborative import top_k
from recommender.ml.interactions import decay
from recommender.ml.interest import Interest, event_vector_weights, multi_interest
from recommender.ranking.exclusions import excluded_products
from recommender.ranking.types import SOURCES

from . import config, sequential_source
from .config import EngineConfig
from .data import AnnSearch, History, NetworkMember
from .social import SocialScores
from .sources import Generation

if TYPE_CHECKING:
    from .hybrid import HybridEngine

# The sources that read the customer's own history: a customer without one gets none of their
# candidates, and their weights are 0 for them.
PERSONAL_SOURCES = ("collaborative", "semantic", "exposure", "sequential")
# The weights a customer without history gets when the configuration gives the non-personal
# sources none: small next to the session source, which should lead when there is context.
_COLD_CUSTOMER_WEIGHTS = {"popularity": 0.2, "trending": 0.1}


@dataclass
class Profile:
    """What one request knows about the customer, computed once and shared by the sources."""

    rows: np.ndarray  # engine rows the history touched (known products), ascending
    weights: np.ndarray  # summed behaviour x recency weight per row
    strongest_type: dict[int, str]  # row -> event type with the most weight
    interests: list[Interest]
    event_vectors: np.ndarray  # rows behind the interests
    # (event type, engine row or -1, title for rows of -1) per row of ``event_vectors``: titles
    # of fitted products are read only for the few labels a list shows (``label``).
    event_sources: list[tuple[str, int, str]]
    titles: StringTable
    context: np.ndarray  # engine rows of the session context, ascending
    network: tuple[NetworkMember, ...] = ()  # the social source's members (History.network)
    own_ids: frozenset[int] = frozenset()  # every product id of the history (tie strength)

    def label(self, i: int) -> tuple[str, str]:
        """(event type, title) of event vector ``i``: the product's title or the query."""
        kind, row, text = self.event_sources[i]
        return kind, self.titles[row] if row >= 0 else text


@dataclass
class CandidateSet:
    """Stage 1's output for one history: the candidates and every source's raw score on them.

    Positions ``0 .. len(rows) - 1`` are engine rows, the following ones ``extra_ids`` (products
    unknown to the fit, proposed by ``ann``). ``raw[source]`` is that source's exact raw score at
    every position (0 where it has nothing to say); ``tops[source]`` are the positions of the
    source's own best allowed candidates (at most ``candidates_per_source``), which are what a
    positive weight on the source admits to the blend (the ``exposure`` source's are admitted
    for the exposure slots too: :func:`recommender.ml.engine.scoring.fuse`). ``weights`` are the
    source weights in effect (a customer without history gets the non-personal ones).
    """

    rows: np.ndarray
    extra_ids: list[int]
    raw: dict[str, np.ndarray]
    tops: dict[str, np.ndarray]
    weights: dict[str, float]
    excluded: set[int]
    profile: Profile
    collaborative_entries: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default=(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
    )
    # The social source's scores and supporters (its reasons name how many people), if asked.
    social: SocialScores = field(default_factory=SocialScores.empty)
    # The newest product of the history the engine knows, with its event type: what the
    # sequential source's reason names.
    latest: tuple[int, str] | None = None

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.extra_ids)

    def admitted(self, weights: Mapping[str, float]) -> np.ndarray:
        """Positions proposed by at least one source with a positive weight, ascending."""
        parts = [self.tops[s] for s in self.tops if weights.get(s, 0.0) > 0]
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)


def silent_sources(history: History) -> tuple[str, ...]:
    """The sources with nothing to say about ``history``: the personal ones for a cold customer
    (no history), the social one without a network. They get weight 0 and generate no
    candidates."""
    silent = PERSONAL_SOURCES if history.is_empty else ()
    return silent if history.network else (*silent, "social")


def source_weights(cfg: EngineConfig, history: History) -> dict[str, float]:
    """The source weights in effect for ``history``: the configured ones, except that a cold
    customer (no history) gets 0 for the personal sources and, when the configuration gives
    the non-personal ones nothing, the cold-customer weights."""
    weights = dict(cfg.source_weights)
    silent = silent_sources(history)
    for source in silent:
        weights[source] = 0.0
    cold_blend = weights.get("trending", 0) <= 0 and weights.get("popularity", 0) <= 0
    if history.is_empty and cold_blend:
        weights.update(_COLD_CUSTOMER_WEIGHTS)
    return weights


def excluded_ids(
    cfg: EngineConfig,
    history: History,
    *,
    exclude_ids: Collection[int] = (),
    context_ids: Sequence[int] = (),
) -> set[int]:
    """Product ids never recommended for ``history``: those with an event of an excluded type
    (``exclude_event_types``), ``exclude_ids`` and the session context."""
    return excluded_products(
        product_ids=list(history.product_ids),
        event_types=list(history.event_types),
        exclude_event_types=cfg.exclude_event_types,
        also=[*exclude_ids, *context_ids],
    )


def candidate_set(
    engine: HybridEngine,
    history: History,
    *,
    now: float,
    category: str | None,
    exclude_ids: Collection[int],
    context_ids: Sequence[int],
    ann: AnnSearch | None,
    all_sources: bool,
) -> CandidateSet:
    """Stage 1 for one history (see :meth:`HybridEngine.candidates`)."""
    engine._check_fitted()
    cfg = engine.config
    profile = build_profile(engine, history, now=now, context_ids=context_ids)
    excluded = excluded_ids(cfg, history, exclude_ids=exclude_ids, context_ids=context_ids)
    weights = source_weights(cfg, history)
    silent = silent_sources(history)
    wanted = [
        s
        for s in SOURCES
        if s not in silent
        and (all_sources or weights.get(s, 0.0) > 0 or (s == "exposure" and cfg.exposure_slots > 0))
    ]
    code = engine._category_code(category)
    if category is not None and code < 0:
        empty = np.empty(0, dtype=np.int64)
        return CandidateSet(empty, [], {}, {}, weights, excluded, profile)
    excluded_rows = engine._rows_of(sorted(excluded))
    excluded_rows = np.unique(excluded_rows[excluded_rows >= 0])
    gen = Generation(engine, profile, code, excluded_rows, excluded, now=now)
    search = search_for(engine, ann)
    size = cfg.candidates_per_source
    proposals: dict[str, tuple[np.ndarray, np.ndarray, list[int]]] = {}
    collab_entries = (np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
    if ("collaborative" in wanted or "exposure" in wanted) and len(profile.rows):
        collab_entries = engine._collaborative_model.gather(profile.rows, profile.weights)
    gen.collaborative_entries = collab_entries
    if sequential_source.SOURCE in wanted:
        gen.sequential_query = sequential_source.sequential_query(engine, history)
    for source in wanted:
        proposals[source] = gen.propose(source, size=size, search=search)
    rows = np.unique(
        np.concatenate([p[0] for p in proposals.values()] + [np.empty(0, np.int64)])
    ).astype(np.int64)
    extra: list[int] = []
    if code < 0:  # Unknown products have no category a filter could check.
        extra = list(dict.fromkeys(pid for p in proposals.values() for pid in p[2]))
    raw = {source: gen.score(source, rows, extra) for source in wanted}
    tops: dict[str, np.ndarray] = {}
    extra_at = {pid: len(rows) + i for i, pid in enumerate(extra)}
    for source, (source_rows, _, source_extra) in proposals.items():
        positions = np.searchsorted(rows, source_rows)
        more = np.array([extra_at[p] for p in source_extra if p in extra_at], dtype=np.int64)
        tops[source] = np.concatenate([positions, more]).astype(np.int64)
    return CandidateSet(
        rows=rows,
        extra_ids=extra,
        raw=raw,
        tops=tops,
        weights=weights,
        excluded=excluded,
        profile=profile,
        collaborative_entries=collab_entries,
        social=gen.social() if "social" in wanted else SocialScores.empty(),
        latest=_latest(engine, history),
    )


def _latest(engine: HybridEngine, history: History) -> tuple[int, str] | None:
    """The engine row and event type of the history's newest product the fit knows."""
    if not len(history.product_ids):
        return None
    rows = engine._rows_of(history.product_ids)
    known = np.flatnonzero(rows >= 0)
    if not len(known):
        return None
    stamps = np.asarray(history.timestamps, dtype=np.float64)[known]
    at = int(known[np.lexsort((known, stamps))[-1]])
    return int(rows[at]), str(history.event_types[at])


def build_profile(
    engine: HybridEngine, history: History, *, now: float, context_ids: Sequence[int]
) -> Profile:
    """Read ``history`` once: weights per product, strongest events, interests, context."""
    cfg = engine.config
    weights = event_vector_weights(
        event_types=list(history.event_types),
        timestamps=np.asarray(history.timestamps, dtype=np.float64),
        behaviour_weights=cfg.behaviour_weights,
        half_life_days=cfg.half_life_days,
        now=now,
    )
    pids = np.asarray(history.product_ids, dtype=np.int64)
    rows = engine._rows_of(pids)
    kinds = list(history.event_types)
    known = rows >= 0
    # The strongest event of each product (the first of equal weights, in event order).
    at = np.flatnonzero(known)
    first = at[np.lexsort((at, -weights[at], rows[at]))]
    first = first[np.r_[True, rows[first][1:] != rows[first][:-1]]] if len(first) else first
    strongest = {int(rows[i]): kinds[i] for i in first.tolist()}
    # Event vectors in event order: fitted products with a vector, and products newer than
    # the fit whose vectors came with the history.
    with_vector = known.copy()
    with_vector[at] = np.asarray(engine._has_vector[rows[at]], dtype=bool)
    extra = [i for i in np.flatnonzero(~known).tolist() if int(pids[i]) in history.extra_vectors]
    used = np.sort(np.concatenate([np.flatnonzero(with_vector), extra])).astype(np.int64)
    dim = engine._vectors.shape[1] if engine._vectors.ndim == 2 else 0
    event_vectors = np.empty((len(used), dim), dtype=np.float32)
    fitted = with_vector[used]
    if fitted.any():
        event_vectors[fitted] = engine._vectors[rows[used[fitted]]]
    labels: list[tuple[str, int, str]] = []
    for place, i in enumerate(used.tolist()):
        if fitted[place]:
            labels.append((kinds[i], int(rows[i]), ""))
        else:
            pid = int(pids[i])
            event_vectors[place] = np.asarray(history.extra_vectors[pid], dtype=np.float32)
            labels.append((kinds[i], -1, history.extra_titles.get(pid, f"product {pid}")))
    vec_rows: list[np.ndarray] = [event_vectors]
    vec_weights: list[float] = weights[used].tolist()
    if history.query_vectors is not None and len(history.query_vectors):
        q_weights = cfg.behaviour_weights.get("search", 0.0) * decay(
            np.asarray(history.query_timestamps, dtype=np.float64),
            now=now,
            half_life_days=cfg.half_life_days,
        )
        texts = list(history.query_texts) or [""] * len(history.query_vectors)
        vec_rows.append(np.asarray(history.query_vectors, dtype=np.float32).reshape(-1, dim))
        vec_weights.extend(float(w) for w in q_weights)
        labels.extend(("search", -1, text) for text in texts)
    vectors = np.concatenate(vec_rows) if len(vec_rows) > 1 else vec_rows[0]
    interests = multi_interest(vectors, np.asarray(vec_weights), n_interests=cfg.n_interests)
    touched, inverse = np.unique(rows[known], return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=weights[known], minlength=len(touched))
    context = engine._rows_of([int(p) for p in context_ids])
    return Profile(
        rows=touched.astype(np.int64),
        weights=summed.astype(np.float64),
        strongest_type=strongest,
        interests=interests,
        event_vectors=vectors,
        event_sources=labels,
        titles=engine._titles,
        context=np.unique(context[context >= 0]).astype(np.int64),
        network=tuple(history.network),
        own_ids=frozenset(int(p) for p in history.product_ids),
    )


def search_for(engine: HybridEngine, ann: AnnSearch | None) -> AnnSearch:
    """``ann`` or, offline, the engine's own search over its vectors (built once)."""
    if ann is not None:
        return ann
    if engine._own_ann is None:
        engine._own_ann = _own_search(engine)
    return engine._own_ann


def _own_search(engine: HybridEngine) -> AnnSearch:
    rows = np.flatnonzero(engine._has_vector)
    ids = engine._ids[rows]
    if len(rows) <= config.EXACT_SEARCH_MAX:
        vectors = np.ascontiguousarray(engine._vectors[rows])

        def exact(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
            scores = vectors @ np.asarray(vector, dtype=np.float32)
            best = top_k(scores, n)
            return list(zip(ids[best].tolist(), scores[best].astype(float).tolist(),
                            strict=True))  # fmt: skip

        return exact
    if not engine._may_build_index:
        raise RuntimeError(
            f"an engine loaded for serving ({len(rows)} products with vectors) searches "
            "through the ann hook (the serving vector index); it builds no index itself"
        )
    from recommender.ml.vector_index import VectorIndex  # Offline only: hnswlib, large catalogue.

    index = VectorIndex.build(ids=ids, vectors=engine._vectors[rows])

    def approximate(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        return index.query(np.asarray(vector, dtype=np.float32), k=n)[0].pairs()

    return approximate
