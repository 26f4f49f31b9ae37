"""The hybrid recommendation engine, in two stages: bounded candidate sources, then scoring,
fusion, diversity and reasons on the candidates only.

Framework-free: the services layer loads :class:`EngineData` from the database, calls
:meth:`HybridEngine.fit` in a worker, saves the artifact (one file), and web processes
:meth:`~HybridEngine.load` it: a read-only memory map shared by every process on the machine. A
customer's history is passed with every request (:class:`History`), so a new event changes the
next list at once, without refitting.

**Stage 1: candidates.** Every source proposes at most ``candidates_per_source`` products from a
bounded structure, never from an array over the catalogue:

- ``semantic``: the ``ann`` search (the serving vector index; offline, the engine's own search)
  per interest vector of the customer (the seed's q_u, split into up to ``n_interests``
  clusters). A product is recommendable as soon as it is embedded, also when it is newer than
  the fit.
- ``collaborative``: the neighbour lists (:mod:`recommender.ml.neighbours`: EASE pruned to its
  largest weights where the dense model fits the memory budget, item-kNN above it) of the
  products in the history, weighted by behaviour and recency.
- ``popularity`` / ``trending``: lists ranked at fit time, per category too.
- ``new_arrivals``: products without events, newest first, ranked at fit time.
- ``session``: the co-occurrence and collaborative neighbours of the products in the current
  request (``context_ids``) and the ``ann`` search around them.

**Stage 2: scores.** Each source's raw score is computed exactly for every candidate (a cosine
with the engine's own vectors, a lookup in the accumulated neighbour sums...), normalised over
the candidates, weighted and blended; merchandising rules, diversity (MMR, category caps) and
reasons follow on the head. Offline (:meth:`HybridEngine.rank`) the same two stages run, so the
evaluation measures what is served; :meth:`HybridEngine.candidates` exposes stage 1 so the
evaluation can report its recall and the tuning page can re-blend without re-generating.

Products unknown to the fitted engine (embedded after the last fit) can appear in a history:
pass their vectors in ``History.extra_vectors`` (and titles in ``History.extra_titles``) and they
shape the interest vectors; as candidates they come through ``ann`` with its score.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recommender.ranking import reasons as reason_text
from recommender.ranking.diversity import mmr_order
from recommender.ranking.exclusions import excluded_products
from recommender.ranking.fusion import Rule, apply_rules, blend
from recommender.ranking.types import SOURCES, RankedItem

from . import neighbours as nb
from .arrays import ArrayFileError, StringTable, is_array_file, load_arrays, save_arrays
from .collaborative import Popularity, top_k, user_item_matrix
from .interactions import DAY_SECONDS, Interactions, decay
from .interest import Interest, event_vector_weights, multi_interest

ARTIFACT_FORMAT = "recsite-engine"
ARTIFACT_VERSION = 2
# Products with events a product without any is compared with (cold look-alikes).
COLD_LOOKALIKES = 20
# Neighbours kept per product of the EASE model (docs/scale.md: 200 cost at most 0.7% of NDCG@10
# against the dense model on both datasets' splits) and of the co-occurrence lists.
EASE_NEIGHBOURS = 200
COOCCURRENCE_NEIGHBOURS = 200
COOCCURRENCE_SHRINK = 5.0
# Lengths of the lists ranked at fit time: the whole catalogue's best and each category's best
# by popularity and by trend, and the newest products without events.
TOP_LIST = 10_000
TOP_PER_CATEGORY = 500
NEW_ARRIVALS_LIST = 5_000
# Offline (no ``ann`` given), catalogues up to this size are searched exactly; larger ones get
# an hnswlib index built once per engine. Category-filtered semantic candidates are searched
# exactly among the category's products up to this many.
EXACT_SEARCH_MAX = 20_000
# Upper bounds that keep the cost of one request bounded whatever a configuration says.
MAX_CANDIDATES_PER_SOURCE = 5_000
MAX_INTERESTS = 10
MAX_NEIGHBOURS = 1_000
# Scores computed at once by the exact cold look-alike search (float32: 64 MB).
_SCORE_BLOCK = 1 << 24

AnnSearch = Callable[[np.ndarray, int], list[tuple[int, float]]]
_SOURCE_ORDER = {source: i for i, source in enumerate(SOURCES)}

# Tuned on the validation split (second-to-last products) of Online Retail and Amazon Office:
# the grid point with the best worst-case NDCG@10 relative to each dataset's own optimum (98.3%
# of both). See docs/evaluation.md. new_arrivals and session are not exercised by that protocol.
DEFAULT_SOURCE_WEIGHTS: dict[str, float] = {
    "semantic": 0.8,
    "collaborative": 1.0,
    "popularity": 0.0,
    "trending": 0.0,
    "new_arrivals": 0.05,
    "session": 1.0,
}
DEFAULT_BEHAVIOUR_WEIGHTS: dict[str, float] = {
    "purchase": 1.0,
    "add_to_cart": 0.6,
    "click": 0.3,
    "view": 0.2,
    "search": 0.3,
}
# The weights a customer without history gets when the configuration gives the non-personal
# sources none: small next to the session source, which should lead when there is context.
_COLD_CUSTOMER_WEIGHTS = {"popularity": 0.2, "trending": 0.1}


class ConfigError(ValueError):
    """A recommendation configuration field is missing, of the wrong type, or out of range."""


class EngineArtifactError(ValueError):
    """A saved engine that cannot be served: another format or version, or a damaged file."""


@dataclass(frozen=True)
class EngineConfig:
    """Everything that tunes the engine; stored as JSON (``to_dict``/``from_dict``)."""

    source_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SOURCE_WEIGHTS)
    )
    behaviour_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_BEHAVIOUR_WEIGHTS)
    )
    half_life_days: float = 7.0  # Recency of a customer's own events (tuned).
    popularity_half_life_days: float = 30.0
    trending_window_days: float = 7.0
    new_arrival_days: float = 30.0
    ease_lambda: float = 200.0
    knn_neighbours: int = 100
    mmr_lambda: float = 1.0  # 1 keeps the fused order; lower trades relevance for variety.
    # A product without events borrows this share of the collaborative score of its most
    # similar product with events (times their cosine): 0 leaves it to the semantic source.
    # Chosen on validation (docs/evaluation.md): every share > 0 cost warm customers more than
    # the 0.5% tolerance on both datasets, so it is a merchant's opt-in for launch-heavy shops.
    cold_collaborative: float = 0.0
    max_per_category: int | None = None
    exclude_event_types: tuple[str, ...] = ("purchase",)
    n_interests: int = 1  # Tuned; 3 scored 0.5% lower on validation, so it stays opt-in.
    candidates_per_source: int = 200
    cooccurrence_event_types: tuple[str, ...] = ("purchase", "add_to_cart")

    def __post_init__(self) -> None:
        for name in ("source_weights", "behaviour_weights"):
            mapping = getattr(self, name)
            if not isinstance(mapping, Mapping):
                raise ConfigError(f"{name}: expected an object of numbers, got {mapping!r}")
            for key, value in mapping.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{name}: keys must be strings, got {key!r}")
                if not _is_number(value) or value < 0 or not math.isfinite(value):
                    raise ConfigError(f"{name}.{key}: expected a number >= 0, got {value!r}")
            object.__setattr__(self, name, {k: float(v) for k, v in mapping.items()})
        unknown = set(self.source_weights) - set(SOURCES)
        if unknown:
            raise ConfigError(
                f"source_weights: unknown source(s) {sorted(unknown)}; expected {list(SOURCES)}"
            )
        for name in (
            "half_life_days",
            "popularity_half_life_days",
            "trending_window_days",
            "new_arrival_days",
            "ease_lambda",
        ):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0 or not math.isfinite(value):
                raise ConfigError(f"{name}: expected a number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        cold = self.cold_collaborative
        if not _is_number(cold) or cold < 0 or not math.isfinite(cold):
            raise ConfigError(f"cold_collaborative: expected a number >= 0, got {cold!r}")
        object.__setattr__(self, "cold_collaborative", float(cold))
        if not _is_number(self.mmr_lambda) or not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(f"mmr_lambda: expected a number from 0 to 1, got {self.mmr_lambda!r}")
        object.__setattr__(self, "mmr_lambda", float(self.mmr_lambda))
        for name, largest in (
            ("n_interests", MAX_INTERESTS),
            ("candidates_per_source", MAX_CANDIDATES_PER_SOURCE),
            ("knn_neighbours", MAX_NEIGHBOURS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
                raise ConfigError(f"{name}: expected an integer from 1 to {largest}, got {value!r}")
        cap = self.max_per_category
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigError(f"max_per_category: expected null or an integer >= 1, got {cap!r}")
        for name in ("exclude_event_types", "cooccurrence_event_types"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name}: expected a list of event type names, got {value!r}")
            object.__setattr__(self, name, tuple(value))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source_weights"] = dict(self.source_weights)
        data["behaviour_weights"] = dict(self.behaviour_weights)
        data["exclude_event_types"] = list(self.exclude_event_types)
        data["cooccurrence_event_types"] = list(self.cooccurrence_event_types)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineConfig:
        """Build from JSON data; missing fields take defaults, unknown fields are an error."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"configuration: expected an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown configuration field")
        values = dict(data)
        for name in ("exclude_event_types", "cooccurrence_event_types"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> EngineConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"configuration: not valid JSON ({exc})") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> EngineConfig:
        return EngineConfig.from_dict({**self.to_dict(), **changes})


@dataclass
class EngineData:
    """The catalogue (one row per product, aligned arrays) and the behaviour to learn from.

    ``item_ids`` must be strictly increasing (product keys in key order) and
    ``interactions.item_ids`` must equal them.
    """

    item_ids: np.ndarray  # int64 product keys, ascending
    item_vectors: np.ndarray  # (n, d) float32, L2-normalised; zero rows where has_vector is False
    has_vector: np.ndarray  # bool
    item_titles: Sequence[str]
    item_categories: Sequence[str]
    item_created_at: np.ndarray  # float64 seconds
    item_active: np.ndarray  # bool
    interactions: Interactions

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        for name in (
            "has_vector",
            "item_titles",
            "item_categories",
            "item_created_at",
            "item_active",
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries, got {len(getattr(self, name))}")
        if self.item_vectors.ndim != 2 or len(self.item_vectors) != n:
            raise ValueError(
                f"item_vectors: expected shape ({n}, d), got {self.item_vectors.shape}"
            )
        if n > 1 and not bool(np.all(np.diff(np.asarray(self.item_ids, dtype=np.int64)) > 0)):
            raise ValueError("item_ids: must be strictly increasing")
        if not np.array_equal(self.interactions.item_ids, self.item_ids):
            raise ValueError("interactions.item_ids: must equal item_ids, in the same order")


@dataclass
class History:
    """One customer's (or one session's) events, passed with each request.

    ``product_ids``, ``event_types`` and ``timestamps`` are parallel, one entry per event.
    Search events without a product go in ``query_vectors`` (embedded queries, (m, d)) with
    ``query_timestamps`` and optional ``query_texts`` for reasons. Products the fitted engine
    does not know may appear in ``product_ids``: give their vectors in ``extra_vectors`` (and
    titles in ``extra_titles``) to let them count; otherwise they are ignored.
    """

    product_ids: Sequence[int] = ()
    event_types: Sequence[str] = ()
    timestamps: Sequence[float] = ()
    query_vectors: np.ndarray | None = None
    query_timestamps: Sequence[float] = ()
    query_texts: Sequence[str] = ()
    extra_vectors: Mapping[int, np.ndarray] = field(default_factory=dict)
    extra_titles: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.product_ids)
        if len(self.event_types) != n or len(self.timestamps) != n:
            raise ValueError(
                "History: product_ids, event_types and timestamps must have equal lengths "
                f"(got {n}, {len(self.event_types)}, {len(self.timestamps)})"
            )
        m = 0 if self.query_vectors is None else len(self.query_vectors)
        if len(self.query_timestamps) != m:
            raise ValueError(f"History.query_timestamps: expected {m} entries")
        if self.query_texts and len(self.query_texts) != m:
            raise ValueError(f"History.query_texts: expected {m} entries or none")

    @property
    def is_empty(self) -> bool:
        return not len(self.product_ids) and (
            self.query_vectors is None or not len(self.query_vectors)
        )


@dataclass
class _Profile:
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

    def label(self, i: int) -> tuple[str, str]:
        """(event type, title) of event vector ``i``: the product's title or the query."""
        kind, row, text = self.event_sources[i]
        return kind, self.titles[row] if row >= 0 else text

    context: np.ndarray  # engine rows of the session context, ascending

    def weight_of(self, row: int) -> float:
        at = int(np.searchsorted(self.rows, row))
        return float(self.weights[at]) if at < len(self.rows) and self.rows[at] == row else 0.0


@dataclass
class CandidateSet:
    """Stage 1's output for one history: the candidates and every source's raw score on them.

    Positions ``0 .. len(rows) - 1`` are engine rows, the following ones ``extra_ids`` (products
    unknown to the fit, proposed by ``ann``). ``raw[source]`` is that source's exact raw score at
    every position (0 where it has nothing to say); ``tops[source]`` are the positions of the
    source's own best allowed candidates (at most ``candidates_per_source``), which are what a
    positive weight on the source admits to the blend. ``weights`` are the source weights in
    effect (a customer without history gets the non-personal ones).
    """

    rows: np.ndarray
    extra_ids: list[int]
    raw: dict[str, np.ndarray]
    tops: dict[str, np.ndarray]
    weights: dict[str, float]
    excluded: set[int]
    profile: _Profile
    collaborative_entries: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default=(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
    )

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.extra_ids)

    def admitted(self, weights: Mapping[str, float]) -> np.ndarray:
        """Positions proposed by at least one source with a positive weight, ascending."""
        parts = [self.tops[s] for s in self.tops if weights.get(s, 0.0) > 0]
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)


@dataclass
class _Fused:
    cset: CandidateSet
    positions: np.ndarray  # admitted candidate positions
    total: np.ndarray  # blended score per admitted position
    components: dict[str, np.ndarray]
    order: np.ndarray  # indices into ``positions``, best first

    @property
    def profile(self) -> _Profile:
        return self.cset.profile


class HybridEngine:
    """Fit once, recommend per request. See the module notes for the two stages."""

    # Configuration fields the fitted arrays were built with: a change takes effect at the next
    # fit. ``behaviour_weights`` is in both sets: a customer's history is weighted with the new
    # values at once, while popularity and the collaborative models learn them at the next fit.
    FIT_TIME_FIELDS = frozenset(
        {
            "behaviour_weights",
            "popularity_half_life_days",
            "trending_window_days",
            "ease_lambda",
            "knn_neighbours",
            "cooccurrence_event_types",
        }
    )
    # Fields read per request: :meth:`with_config` applies them to a fitted engine.
    # ``new_arrival_days`` and ``cold_collaborative`` are among them (the arrival window and the
    # borrowed share are computed per request; the look-alike lists do not depend on them).
    REQUEST_TIME_FIELDS = frozenset(
        {
            "source_weights",
            "behaviour_weights",
            "half_life_days",
            "new_arrival_days",
            "mmr_lambda",
            "cold_collaborative",
            "max_per_category",
            "exclude_event_types",
            "n_interests",
            "candidates_per_source",
        }
    )
    # Set on the copies :meth:`with_config` makes: the configuration the arrays were fitted with,
    # and the fit-time fields the requested configuration changes (waiting for the next fit).
    _fit_config: EngineConfig | None = None
    pending_fit_fields: tuple[str, ...] = ()

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.fitted_at: float | None = None
        # Which collaborative model serves: "ease" (pruned) or "item_knn"; and why.
        self.collaborative_model = ""
        self.collaborative_note = ""
        self._ids: np.ndarray = np.empty(0, dtype=np.int64)
        self._vectors: np.ndarray = np.empty((0, 0), dtype=np.float32)
        self._has_vector: np.ndarray = np.empty(0, dtype=bool)
        self._active: np.ndarray = np.empty(0, dtype=bool)
        self._has_events: np.ndarray = np.empty(0, dtype=bool)
        self._created: np.ndarray = np.empty(0, dtype=np.float64)
        self._category: np.ndarray = np.empty(0, dtype=np.int32)
        self._category_names: list[str] = []
        self._category_rows: np.ndarray = np.empty(0, dtype=np.int32)
        self._category_offsets: np.ndarray = np.zeros(1, dtype=np.int64)
        self._titles = StringTable.from_strings([])
        self._pop: np.ndarray = np.empty(0, dtype=np.float64)
        self._trend: np.ndarray = np.empty(0, dtype=np.float64)
        self._pop_max = 0.0
        self._pop_top: np.ndarray = np.empty(0, dtype=np.int32)
        self._trend_top: np.ndarray = np.empty(0, dtype=np.int32)
        self._cat_pop = nb.Neighbours.empty(0)  # Rows: categories; entries: their best rows.
        self._cat_trend = nb.Neighbours.empty(0)
        self._new_top: np.ndarray = np.empty(0, dtype=np.int32)
        self._knn = nb.Neighbours.empty(0)
        self._ease: nb.Neighbours | None = None
        self._cooc = nb.Neighbours.empty(0)
        self._cold = nb.Neighbours.empty(0)
        self._own_ann: AnnSearch | None = None
        # A fitted engine (offline: the evaluation, a fit's own checks) may build an hnswlib
        # index of its own vectors when no ``ann`` is given; a loaded one (serving) may not.
        self._may_build_index = True

    # Fitting -----------------------------------------------------------------------------

    def fit(
        self,
        data: EngineData,
        *,
        now: float,
        ease_max_items: int = 20_000,
        threads: int = 0,
        ann: AnnSearch | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> HybridEngine:
        """Fit every model on ``data`` as of ``now``.

        ``ease_max_items``: EASE (exact, then pruned) when the catalogue has at most this many
        products, item-kNN neighbour lists above it (the services derive it from the memory
        budget: :func:`recommender.ml.neighbours.ease_memory_bytes`). ``threads``: for the
        neighbour computations (0: every core). ``ann``: a search over product vectors for the
        cold look-alikes of a large catalogue (the serving index); without it they are found
        exactly when that is cheap. ``progress`` receives fractions from 0 to 1.
        """
        cfg = self.config
        report = progress or (lambda _: None)
        n = len(data.item_ids)
        self._ids = np.asarray(data.item_ids, dtype=np.int64)
        self._vectors = np.ascontiguousarray(data.item_vectors, dtype=np.float32)
        self._has_vector = np.asarray(data.has_vector, dtype=bool)
        self._active = np.asarray(data.item_active, dtype=bool)
        self._created = np.asarray(data.item_created_at, dtype=np.float64)
        self._titles = StringTable.from_strings(list(data.item_titles))
        names, codes = np.unique(np.asarray(list(data.item_categories), dtype=object).astype(str),
                                 return_inverse=True)  # fmt: skip
        self._category_names = [str(x) for x in names]
        self._category = codes.astype(np.int32).reshape(-1)
        self._category_rows = np.argsort(self._category, kind="stable").astype(np.int32)
        self._category_offsets = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self._category, minlength=len(names)),
                  out=self._category_offsets[1:])  # fmt: skip
        inter = data.interactions
        self._has_events = np.bincount(inter.item_idx, minlength=n) > 0
        report(0.05)
        popularity = Popularity(
            half_life_days=cfg.popularity_half_life_days, window_days=cfg.trending_window_days
        ).fit(inter, behaviour_weights=cfg.behaviour_weights, now=now)
        assert popularity.scores is not None
        assert popularity.trend is not None
        self._pop = np.asarray(popularity.scores, dtype=np.float64)
        self._trend = np.asarray(popularity.trend, dtype=np.float64)
        self._rank_lists()
        report(0.1)
        matrix = user_item_matrix(inter, behaviour_weights=cfg.behaviour_weights)
        self._knn = nb.item_knn(matrix, k=cfg.knn_neighbours, threads=threads)
        report(0.4)
        if 0 < n <= ease_max_items:
            self._ease = nb.ease(matrix, l2=cfg.ease_lambda, k=EASE_NEIGHBOURS)
            self.collaborative_model = "ease"
            self.collaborative_note = f"EASE on {n} products, {EASE_NEIGHBOURS} weights a product"
        else:
            self._ease = None
            self.collaborative_model = "item_knn"
            self.collaborative_note = (
                f"item-kNN ({cfg.knn_neighbours} neighbours): {n} products are more than "
                f"the {ease_max_items} dense EASE is fitted for (time and memory budget)"
            )
        del matrix
        report(0.75)
        self._cooc = nb.cooccurrence(
            _basket_incidence(inter, event_types=cfg.cooccurrence_event_types),
            k=COOCCURRENCE_NEIGHBOURS,
            shrink=COOCCURRENCE_SHRINK,
            threads=threads,
        )
        report(0.9)
        self._cold = self._cold_lookalikes(ann)
        self.fitted_at = float(now)
        self._own_ann = None
        report(1.0)
        return self

    def _rank_lists(self) -> None:
        """The lists stage 1 reads popularity, trend and new arrivals from."""
        self._pop_max = float(self._pop.max()) if len(self._pop) else 0.0
        self._pop_top = _best_rows(self._pop, TOP_LIST)
        self._trend_top = _best_rows(self._trend, TOP_LIST)
        self._cat_pop = _best_rows_per_group(self._pop, self._category, TOP_PER_CATEGORY,
                                             len(self._category_names))  # fmt: skip
        self._cat_trend = _best_rows_per_group(self._trend, self._category, TOP_PER_CATEGORY,
                                               len(self._category_names))  # fmt: skip
        fresh = np.flatnonzero(~self._has_events)
        newest = fresh[np.lexsort((fresh, -self._created[fresh]))][:NEW_ARRIVALS_LIST]
        self._new_top = newest.astype(np.int32)

    def _cold_lookalikes(self, ann: AnnSearch | None) -> nb.Neighbours:
        """Rows: products with a vector and no events; entries: their ``COLD_LOOKALIKES``
        nearest products with events and a vector, valued by the cosine (negatives as 0).

        Exactly (blocks of cosines) when cold x warm products is at most ``EXACT_SEARCH_MAX``
        squared, else through ``ann`` (asking three times as many and keeping those with
        events); without ``ann`` a large catalogue has none (``cold_collaborative`` then has
        nothing to borrow).
        """
        n = len(self._ids)
        cold = np.flatnonzero(self._has_vector & ~self._has_events)
        warm = np.flatnonzero(self._has_vector & self._has_events)
        m = min(COLD_LOOKALIKES, len(warm))
        if not len(cold) or m == 0:
            return nb.Neighbours.empty(n)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        values: list[np.ndarray] = []
        if len(cold) * len(warm) <= EXACT_SEARCH_MAX**2:
            warm_vectors = self._vectors[warm]
            step = max(16, _SCORE_BLOCK // len(warm))  # At most 64 MB of cosines at a time.
            for start in range(0, len(cold), step):
                block = cold[start : start + step]
                sims = self._vectors[block] @ warm_vectors.T
                top = np.argpartition(-sims, m - 1, axis=1)[:, :m]
                rows.append(np.repeat(block, m))
                cols.append(warm[top].ravel())
                values.append(np.maximum(np.take_along_axis(sims, top, axis=1), 0.0).ravel())
        elif ann is not None:
            for row in cold:
                found = [
                    (self._row_of(pid), score) for pid, score in ann(self._vectors[row], 3 * m + 1)
                ]
                kept = [(r, s) for r, s in found if r >= 0 and r != row and self._has_events[r]]
                kept = kept[:m]
                rows.append(np.full(len(kept), row))
                cols.append(np.array([r for r, _ in kept], dtype=np.int64))
                values.append(np.maximum(np.array([s for _, s in kept], dtype=np.float64), 0))
        else:
            return nb.Neighbours.empty(n)
        matrix = sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
            dtype=np.float32,
        )
        return nb.Neighbours.from_csr(matrix)

    @property
    def item_ids(self) -> np.ndarray:
        return self._ids

    @property
    def n_items(self) -> int:
        return len(self._ids)

    def _row_of(self, product_id: int) -> int:
        """The engine row of ``product_id``, or -1 when the fit did not know it."""
        at = int(np.searchsorted(self._ids, product_id))
        if at < len(self._ids) and int(self._ids[at]) == int(product_id):
            return at
        return -1

    def _rows_of(self, product_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Engine rows of ``product_ids`` (-1 for unknown ones), in their order."""
        ids = np.asarray(product_ids, dtype=np.int64)
        if not len(ids) or not len(self._ids):
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return np.where(self._ids[at] == ids, at, -1).astype(np.int64)

    def ids_without_vector(self, product_ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """The ids of ``product_ids`` the engine cannot score by meaning: unknown to the fit or
        without a vector then. Only ``ann`` knows these."""
        ids = np.asarray(product_ids, dtype=np.int64)
        rows = self._rows_of(ids)
        known = rows >= 0
        known[known] = self._has_vector[rows[known]]
        return ids[~known]

    def known(self, product_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Whether the fit knew each of ``product_ids`` (a binary search each)."""
        return self._rows_of(product_ids) >= 0

    def index_of(self, product_id: int) -> int:
        row = self._row_of(product_id)
        if row < 0:
            raise KeyError(f"product {product_id} is not in the fitted engine")
        return row

    def title_of(self, row: int) -> str:
        return self._titles[row]

    def category_of(self, row: int) -> str:
        return self._category_names[int(self._category[row])] if row >= 0 else ""

    # Configuration at request time ----------------------------------------------------------

    @property
    def fitted_config(self) -> EngineConfig:
        """The configuration the fitted arrays were built with (fit-time fields count here)."""
        return self._fit_config if self._fit_config is not None else self.config

    def fit_time_changes(self, config: EngineConfig) -> tuple[str, ...]:
        """The fit-time fields whose value in ``config`` differs from the fitted one, sorted."""
        fitted = self.fitted_config
        return tuple(
            name
            for name in sorted(self.FIT_TIME_FIELDS)
            if getattr(config, name) != getattr(fitted, name)
        )

    def with_config(self, config: EngineConfig, *, strict: bool = False) -> HybridEngine:
        """This fitted engine serving ``config``'s request-time fields, without a refit.

        A shallow copy: every fitted array is shared, so it costs microseconds and no memory.
        Its ``config`` takes the request-time fields from ``config`` and the fit-time ones from
        the fit; ``pending_fit_fields`` names the fit-time fields ``config`` changes, which take
        effect at the next fit. With ``strict`` such a change raises :class:`ConfigError`.
        """
        self._check_fitted()
        pending = self.fit_time_changes(config)
        if pending and strict:
            raise ConfigError(f"{pending[0]}: takes effect at the next fit, not on a fitted engine")
        fitted = self.fitted_config
        values = fitted.to_dict()
        requested = config.to_dict()
        values.update({name: requested[name] for name in self.REQUEST_TIME_FIELDS})
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.config = EngineConfig.from_dict(values)
        clone._fit_config = fitted
        clone.pending_fit_fields = pending
        return clone

    # Stage 1: candidates ------------------------------------------------------------------

    def _profile(self, history: History, *, now: float, context_ids: Sequence[int]) -> _Profile:
        cfg = self.config
        weights = event_vector_weights(
            event_types=list(history.event_types),
            timestamps=np.asarray(history.timestamps, dtype=np.float64),
            behaviour_weights=cfg.behaviour_weights,
            half_life_days=cfg.half_life_days,
            now=now,
        )
        pids = np.asarray(history.product_ids, dtype=np.int64)
        rows = self._rows_of(pids)
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
        with_vector[at] = np.asarray(self._has_vector[rows[at]], dtype=bool)
        extra = [
            i for i in np.flatnonzero(~known).tolist() if int(pids[i]) in history.extra_vectors
        ]
        used = np.sort(np.concatenate([np.flatnonzero(with_vector), extra])).astype(np.int64)
        dim = self._vectors.shape[1] if self._vectors.ndim == 2 else 0
        event_vectors = np.empty((len(used), dim), dtype=np.float32)
        fitted = with_vector[used]
        if fitted.any():
            event_vectors[fitted] = self._vectors[rows[used[fitted]]]
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
        context = self._rows_of([int(p) for p in context_ids])
        return _Profile(
            rows=touched.astype(np.int64),
            weights=summed.astype(np.float64),
            strongest_type=strongest,
            interests=interests,
            event_vectors=vectors,
            event_sources=labels,
            titles=self._titles,
            context=np.unique(context[context >= 0]).astype(np.int64),
        )

    def _effective_weights(self, history: History) -> dict[str, float]:
        weights = dict(self.config.source_weights)
        if history.is_empty:
            # A cold customer: only the non-personal sources can say anything.
            weights["collaborative"] = weights["semantic"] = 0.0
            if weights.get("trending", 0) <= 0 and weights.get("popularity", 0) <= 0:
                weights.update(_COLD_CUSTOMER_WEIGHTS)
        return weights

    def _search(self, ann: AnnSearch | None) -> AnnSearch:
        """``ann`` or, offline, the engine's own search over its vectors."""
        if ann is not None:
            return ann
        if self._own_ann is None:
            self._own_ann = self._build_own_search()
        return self._own_ann

    def _build_own_search(self) -> AnnSearch:
        rows = np.flatnonzero(self._has_vector)
        ids = self._ids[rows]
        if len(rows) <= EXACT_SEARCH_MAX:
            vectors = np.ascontiguousarray(self._vectors[rows])

            def exact(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
                scores = vectors @ np.asarray(vector, dtype=np.float32)
                best = top_k(scores, n)
                return list(zip(ids[best].tolist(), scores[best].astype(float).tolist(),
                                strict=True))  # fmt: skip

            return exact
        if not self._may_build_index:
            raise RuntimeError(
                f"an engine loaded for serving ({len(rows)} products with vectors) searches "
                "through the ann hook (the serving vector index); it builds no index itself"
            )
        from .vector_index import VectorIndex  # Offline only: hnswlib over a large catalogue.

        index = VectorIndex.build(ids=ids, vectors=self._vectors[rows])

        def approximate(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
            return index.query(np.asarray(vector, dtype=np.float32), k=n)[0].pairs()

        return approximate

    def candidates(
        self,
        history: History,
        *,
        now: float,
        category: str | None = None,
        exclude_ids: Collection[int] = (),
        context_ids: Sequence[int] = (),
        ann: AnnSearch | None = None,
        all_sources: bool = False,
    ) -> CandidateSet:
        """Stage 1 for one history: each source's best allowed candidates and every source's
        raw score on all of them (stage 2's input). ``all_sources`` generates every source, not
        only those with a positive weight (the tuning page re-blends them)."""
        self._check_fitted()
        cfg = self.config
        profile = self._profile(history, now=now, context_ids=context_ids)
        excluded = excluded_products(
            product_ids=list(history.product_ids),
            event_types=list(history.event_types),
            exclude_event_types=cfg.exclude_event_types,
            also=[*exclude_ids, *context_ids],
        )
        weights = self._effective_weights(history)
        wanted = [s for s in SOURCES if all_sources or weights.get(s, 0.0) > 0]
        if history.is_empty:
            wanted = [s for s in wanted if s not in ("collaborative", "semantic")]
        code = self._category_code(category)
        if category is not None and code < 0:
            empty = np.empty(0, dtype=np.int64)
            return CandidateSet(empty, [], {}, {}, weights, excluded, profile)
        excluded_rows = self._rows_of(sorted(excluded))
        excluded_rows = np.unique(excluded_rows[excluded_rows >= 0])
        gen = _Generation(self, profile, code, excluded_rows, excluded, now=now)
        search = self._search(ann)
        size = cfg.candidates_per_source
        proposals: dict[str, tuple[np.ndarray, np.ndarray, list[int]]] = {}
        collab_entries = (np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))
        if "collaborative" in wanted and len(profile.rows):
            collab_entries = self._collaborative_model.gather(profile.rows, profile.weights)
        gen.collaborative_entries = collab_entries
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
        )

    @property
    def _collaborative_model(self) -> nb.Neighbours:
        return self._ease if self._ease is not None else self._knn

    def _category_code(self, category: str | None) -> int:
        """The category's code, -1 without a category, -2 for a category the fit never saw."""
        if category is None:
            return -1
        at = int(np.searchsorted(np.asarray(self._category_names, dtype=object), category))
        if at < len(self._category_names) and self._category_names[at] == category:
            return at
        return -2

    def category_rows(self, code: int) -> np.ndarray:
        start, end = int(self._category_offsets[code]), int(self._category_offsets[code + 1])
        return self._category_rows[start:end]

    # Stage 2: fusion --------------------------------------------------------------------

    def fuse(self, cset: CandidateSet, weights: Mapping[str, float] | None = None) -> _Fused:
        """Blend the admitted candidates of ``cset`` with ``weights`` (default: the weights in
        effect for the history): max-normalised raw scores over the admitted candidates,
        weighted and summed, ordered best first (ties by position)."""
        weights = cset.weights if weights is None else weights
        positions = cset.admitted(weights)
        sources = [s for s in cset.raw if weights.get(s, 0.0) > 0]
        total, components = blend(
            {s: cset.raw[s][positions] for s in sources}, weights, size=len(positions)
        )
        order = np.lexsort((np.arange(len(positions)), -total))
        return _Fused(cset=cset, positions=positions, total=total, components=components,
                      order=order)  # fmt: skip

    def _fused(
        self,
        history: History,
        *,
        now: float,
        category: str | None,
        exclude_ids: Collection[int],
        context_ids: Sequence[int],
        ann: AnnSearch | None,
    ) -> _Fused | None:
        cset = self.candidates(
            history,
            now=now,
            category=category,
            exclude_ids=exclude_ids,
            context_ids=context_ids,
            ann=ann,
        )
        fused = self.fuse(cset)
        return fused if len(fused.positions) else None

    def source_scores(
        self,
        history: History,
        *,
        now: float,
        context_ids: Sequence[int] = (),
        ann: AnnSearch | None = None,
    ) -> dict[str, dict[int, float]]:
        """Every source's raw score by product id on the candidates of every source (stage 1
        with all sources on): what the inspector and the tests read."""
        cset = self.candidates(history, now=now, context_ids=context_ids, ann=ann,
                               all_sources=True)  # fmt: skip
        ids = [*self._ids[cset.rows].tolist(), *cset.extra_ids]
        return {
            source: dict(zip(ids, values.tolist(), strict=True))
            for source, values in cset.raw.items()
        }

    # Recommending ------------------------------------------------------------------------

    def rank(
        self,
        history: History,
        *,
        k: int,
        now: float,
        category: str | None = None,
        exclude_ids: Collection[int] = (),
        context_ids: Sequence[int] = (),
        ann: AnnSearch | None = None,
    ) -> np.ndarray:
        """Row indices of the top ``k`` fitted products, as :meth:`recommend` orders them but
        without reasons or rules (the offline evaluation ranks thousands of customers)."""
        if k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        fused = self._fused(history, now=now, category=category, exclude_ids=exclude_ids,
                            context_ids=context_ids, ann=ann)  # fmt: skip
        if fused is None:
            return np.empty(0, dtype=np.int64)
        return self.rank_fused(fused, k=k)

    def rank_fused(self, fused: _Fused, *, k: int) -> np.ndarray:
        """The top ``k`` engine rows of a fused candidate set, diversity applied."""
        cset = fused.cset
        n_rows = len(cset.rows)
        order = fused.order
        known = fused.positions[order] < n_rows
        ranked = fused.positions[order][known]
        scores = fused.total[order][known]
        rows = cset.rows[ranked]
        if self.config.mmr_lambda >= 1.0 and self.config.max_per_category is None:
            return rows[:k]
        head = min(len(rows), max(5 * k, 50))
        chosen = mmr_order(
            scores[:head],
            np.asarray(self._vectors[rows[:head]]),
            k=k,
            lam=self.config.mmr_lambda,
            categories=[self.category_of(int(r)) for r in rows[:head]],
            max_per_category=self.config.max_per_category,
        )
        return rows[:head][chosen]

    def recommend(
        self,
        history: History,
        *,
        k: int,
        now: float,
        category: str | None = None,
        exclude_ids: Collection[int] = (),
        context_ids: Sequence[int] = (),
        ann: AnnSearch | None = None,
        rules: Sequence[Rule] = (),
    ) -> list[RankedItem]:
        """The top ``k`` products for a customer (or a session), best first, with reasons.

        An empty history falls back to trending and popular products (plus the session
        sources when ``context_ids`` are given). ``ann(vector, n)`` (the serving index) is the
        semantic source's first stage; fitted products are scored by the engine's own vectors
        whatever it returns, products newer than the fit by its score. ``rules`` (merchandising)
        run on the fused list before diversity. Reasons are written for the returned items.
        """
        if k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        cfg = self.config
        fused = self._fused(history, now=now, category=category, exclude_ids=exclude_ids,
                            context_ids=context_ids, ann=ann)  # fmt: skip
        if fused is None:
            return []
        order = fused.order
        size = len(order)
        reorders = bool(rules) or cfg.mmr_lambda < 1.0 or cfg.max_per_category is not None
        # Rules and diversity look past the first k; without them the fused order is final.
        depth = min(size, max(5 * k, 50) if reorders else k)
        # Items without reasons for the head (rules and diversity need scores and sources only);
        # reasons cost a lookup each, so only the k returned get them.
        head: list[RankedItem] = []
        while True:
            head.extend(self._ranked_item(fused, int(p)) for p in order[len(head) : depth])
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
                np.stack([self._vector_of(item.index) for item in items])
                if items
                else np.zeros((0, 1))
            )
            chosen = mmr_order(
                np.array([item.score for item in items]),
                vectors,
                k=k,
                lam=cfg.mmr_lambda,
                categories=[self.category_of(item.index) for item in items],
                max_per_category=cfg.max_per_category,
            )
        return self._with_reasons([items[i] for i in chosen[:k]], fused.cset)

    def similar(
        self,
        product_id: int,
        *,
        k: int,
        mode: Literal["semantic", "behavioural", "hybrid"] = "hybrid",
        ann: AnnSearch | None = None,
    ) -> list[RankedItem]:
        """Products like ``product_id``: by vector, by who bought them, or both (normalised)."""
        self._check_fitted()
        if mode not in ("semantic", "behavioural", "hybrid"):
            raise ValueError(f"mode: expected semantic, behavioural or hybrid, got {mode!r}")
        idx = self.index_of(product_id)
        title = self._titles[idx]
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if mode in ("semantic", "hybrid") and self._has_vector[idx]:
            found = self._search(ann)(self._vectors[idx], k + _SIMILAR_OVERFETCH)
            rows = self._rows_of([pid for pid, _ in found])
            rows = np.unique(np.concatenate([rows[rows >= 0], [idx]]))
            rows = rows[self._has_vector[rows]]
            # Exact cosines; the product itself stays in for the normalisation (as its best).
            sims = np.asarray(self._vectors[rows] @ self._vectors[idx], dtype=np.float64)
            parts["semantic"] = (rows, sims)
        if mode in ("behavioural", "hybrid"):
            parts["collaborative"] = _summed_rows((self._knn, idx), (self._cooc, idx))
        return self._simple_list(
            parts,
            blocked=idx,
            k=k,
            reason_for={
                "semantic": lambda _: f"similar to {title}",
                "collaborative": lambda _: reason_text.bought_together(title=title),
            },
        )

    def bought_together(self, product_id: int, *, k: int) -> list[RankedItem]:
        """Products that share baskets with ``product_id`` (co-occurrence), best first."""
        self._check_fitted()
        idx = self.index_of(product_id)
        title = self._titles[idx]
        cols, values = self._cooc.row(idx)
        return self._simple_list(
            {"session": (cols.astype(np.int64), values.astype(np.float64))},
            blocked=idx,
            k=k,
            reason_for={"session": lambda _: reason_text.bought_together(title=title)},
        )

    def trending(self, *, k: int, now: float, category: str | None = None) -> list[RankedItem]:
        """Trending products (as of the fit; ``now`` is accepted for symmetry), then popular."""
        self._check_fitted()
        code = self._category_code(category)
        if code == -2:
            return []
        if code >= 0:
            trend_rows = self._cat_trend.row(code)[0].astype(np.int64)
            pop_rows = self._cat_pop.row(code)[0].astype(np.int64)
        else:
            trend_rows = self._trend_top.astype(np.int64)
            pop_rows = self._pop_top.astype(np.int64)
        # Popular products fill the list behind the trending ones (a quiet week has few).
        top = self._pop_max if self._pop_max > 0 else 1.0
        trend = self._trend[trend_rows]
        parts = {
            "trending": (trend_rows, np.where(trend > 0, trend + 1.0, 0.0)),
            "popularity": (pop_rows, self._pop[pop_rows] / top),
        }
        return self._simple_list(
            parts,
            blocked=-1,
            k=k,
            reason_for={
                "trending": lambda i: reason_text.popular_in(
                    category=self.category_of(i), trending=True
                ),
                "popularity": lambda i: reason_text.popular_in(
                    category=self.category_of(i), trending=False
                ),
            },
            normalise_parts=False,
        )

    # Persistence -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted engine to ``path`` (one memory-mappable file) atomically."""
        self._check_fitted()
        meta = {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "config": self.config.to_dict(),
            "fitted_at": self.fitted_at,
            "categories": self._category_names,
            "pop_max": self._pop_max,
            "collaborative_model": self.collaborative_model,
            "collaborative_note": self.collaborative_note,
        }
        arrays: dict[str, np.ndarray] = {
            "ids": self._ids,
            "vectors": self._vectors,
            "has_vector": self._has_vector,
            "active": self._active,
            "has_events": self._has_events,
            "created": self._created,
            "category": self._category,
            "category_rows": self._category_rows,
            "category_offsets": self._category_offsets,
            "titles_blob": self._titles.blob,
            "titles_offsets": self._titles.offsets,
            "pop": self._pop,
            "trend": self._trend,
            "pop_top": self._pop_top,
            "trend_top": self._trend_top,
            "new_top": self._new_top,
            **self._cat_pop.to_arrays("cat_pop"),
            **self._cat_trend.to_arrays("cat_trend"),
            **self._knn.to_arrays("knn"),
            **self._cooc.to_arrays("cooc"),
            **self._cold.to_arrays("cold"),
        }
        if self._ease is not None:
            arrays.update(self._ease.to_arrays("ease"))
        return save_arrays(path, arrays, meta=meta)

    @staticmethod
    def artifact_version(path: str | os.PathLike[str]) -> int:
        """The format version of a saved engine: 2 for this format, 1 for the former ``.npz``
        files (which cannot be served: refit), 0 for anything else."""
        if is_array_file(path):
            try:
                return int(load_arrays(path).meta.get("version", 0))
            except (ArrayFileError, OSError):
                return 0
        try:
            with open(path, "rb") as handle:
                return 1 if handle.read(2) == b"PK" else 0
        except OSError:
            return 0

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HybridEngine:
        """Map a saved engine read-only (the arrays stay in the shared page cache)."""
        try:
            stored = load_arrays(path)
        except ArrayFileError as exc:
            version = cls.artifact_version(path)
            hint = " (format 1: refit with `manage.py train`)" if version == 1 else ""
            raise EngineArtifactError(f"{path}: not a {ARTIFACT_FORMAT} file{hint}") from exc
        meta, arrays = stored.meta, stored.arrays
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("version") != ARTIFACT_VERSION:
            raise EngineArtifactError(f"{path}: not a {ARTIFACT_FORMAT} v{ARTIFACT_VERSION} file")
        engine = cls(EngineConfig.from_dict(meta["config"]))
        engine._may_build_index = False
        engine.fitted_at = meta["fitted_at"]
        engine.collaborative_model = meta.get("collaborative_model", "")
        engine.collaborative_note = meta.get("collaborative_note", "")
        engine._category_names = list(meta["categories"])
        engine._pop_max = float(meta["pop_max"])
        engine._ids = arrays["ids"]
        engine._vectors = arrays["vectors"]
        engine._has_vector = arrays["has_vector"]
        engine._active = arrays["active"]
        engine._has_events = arrays["has_events"]
        engine._created = arrays["created"]
        engine._category = arrays["category"]
        engine._category_rows = arrays["category_rows"]
        engine._category_offsets = arrays["category_offsets"]
        engine._titles = StringTable(arrays["titles_blob"], arrays["titles_offsets"])
        engine._pop = arrays["pop"]
        engine._trend = arrays["trend"]
        engine._pop_top = arrays["pop_top"]
        engine._trend_top = arrays["trend_top"]
        engine._new_top = arrays["new_top"]
        engine._cat_pop = nb.Neighbours.from_arrays(arrays, "cat_pop")
        engine._cat_trend = nb.Neighbours.from_arrays(arrays, "cat_trend")
        engine._knn = nb.Neighbours.from_arrays(arrays, "knn")
        engine._cooc = nb.Neighbours.from_arrays(arrays, "cooc")
        engine._cold = nb.Neighbours.from_arrays(arrays, "cold")
        engine._ease = (
            nb.Neighbours.from_arrays(arrays, "ease") if "ease_indptr" in arrays else None
        )
        return engine

    # Internals ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if self.fitted_at is None:
            raise RuntimeError("HybridEngine: call fit() or load() first")

    def _vector_of(self, index: int) -> np.ndarray:
        if index < 0:
            return np.zeros(self._vectors.shape[1], dtype=np.float32)
        return np.asarray(self._vectors[index])

    def _simple_list(
        self,
        parts: Mapping[str, tuple[np.ndarray, np.ndarray]],
        *,
        blocked: int,
        k: int,
        reason_for: Mapping[str, Callable[[int], str]],
        normalise_parts: bool = True,
    ) -> list[RankedItem]:
        """A product list from a few sparse parts ``{source: (rows, scores)}``: normalised
        (by each part's maximum) and summed over the union of their rows, inactive products
        and ``blocked`` left out, best ``k`` first (ties by row)."""
        if k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        parts = {s: p for s, p in parts.items() if len(p[0])}
        if not parts:
            return []
        rows = np.unique(np.concatenate([p[0] for p in parts.values()])).astype(np.int64)
        dense = {s: nb.lookup(*_sorted_part(*p), rows) for s, p in parts.items()}
        if normalise_parts:
            total, components = blend(dense, dict.fromkeys(dense, 1.0), size=len(rows))
        else:
            components = {s: np.maximum(v, 0.0) for s, v in dense.items()}
            total = sum(components.values(), np.zeros(len(rows)))
        allowed = np.asarray(self._active[rows], dtype=bool) & (rows != blocked)
        masked = np.where(allowed & (total > 0), total, -np.inf)
        items = []
        for position in top_k(masked, k):
            idx = int(rows[position])
            comps = {s: float(c[position]) for s, c in components.items() if c[position] > 0}
            sources = tuple(sorted(comps, key=lambda s: -comps[s]))
            items.append(
                RankedItem(
                    index=idx,
                    product_id=int(self._ids[idx]),
                    score=float(total[position]),
                    sources=sources,
                    components=comps,
                    reasons=tuple(reason_for[s](idx) for s in sources),
                )
            )
        return items

    def _ranked_item(self, fused: _Fused, place: int) -> RankedItem:
        """The fused candidate at ``place`` (an index into ``fused.positions``), without
        reasons (see :meth:`_with_reasons`)."""
        cset = fused.cset
        position = int(fused.positions[place])
        if position < len(cset.rows):
            index = int(cset.rows[position])
            product_id = int(self._ids[index])
        else:
            index = -1
            product_id = cset.extra_ids[position - len(cset.rows)]
        comps = {s: float(c[place]) for s, c in fused.components.items() if c[place] > 0}
        sources = tuple(sorted(comps, key=lambda s: (-comps[s], _SOURCE_ORDER[s])))
        return RankedItem(
            index=index,
            product_id=product_id,
            score=float(fused.total[place]),
            sources=sources,
            components=comps,
            reasons=(),
        )

    def _with_reasons(self, items: list[RankedItem], cset: CandidateSet) -> list[RankedItem]:
        best_source = self._collaborative_contributors(
            cset, [item.index for item in items if "collaborative" in item.sources]
        )
        out = []
        for item in items:
            reasons = tuple(
                dict.fromkeys(
                    self._reason(source, item.index, cset.profile, best_source)
                    for source in item.sources
                )
            )
            if not reasons:
                category = self.category_of(item.index)
                reasons = (reason_text.popular_in(category=category, trending=False),)
            out.append(replace(item, reasons=reasons))
        return out

    def _collaborative_contributors(self, cset: CandidateSet, rows: list[int]) -> dict[int, int]:
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

    def _reason(
        self, source: str, index: int, profile: _Profile, best_source: Mapping[int, int]
    ) -> str:
        category = self.category_of(index)
        if source == "collaborative" and index in best_source:
            best = best_source[index]
            return reason_text.because_you(
                event_type=profile.strongest_type.get(best, "view"), title=self._titles[best]
            )
        if source == "semantic" and len(profile.event_vectors):
            vector = self._vector_of(index)
            if index < 0 or not vector.any():
                # A product the engine does not know: name the heaviest interest's best event.
                best = profile.interests[0].members[0] if profile.interests else 0
            else:
                best = int(np.argmax(profile.event_vectors @ vector))
            kind, title = profile.label(best)
            if kind == "search" and title:
                return reason_text.matches_search(query=title)
            return reason_text.similar_to(event_type=kind, title=title)
        if source == "session" and index >= 0 and len(profile.context):
            ctx = profile.context
            vector = self._vector_of(index)
            best = int(ctx[int(np.argmax(np.asarray(self._vectors[ctx]) @ vector))])
            cols, values = self._cooc.row(best)
            title = self._titles[best]
            if nb.lookup(cols.astype(np.int64), values, np.array([index]))[0] > 0:
                return reason_text.bought_together(title=title)
            return reason_text.goes_with(title=title)
        if source == "trending":
            return reason_text.popular_in(category=category, trending=True)
        if source == "new_arrivals":
            return reason_text.new_arrival(category=category)
        return reason_text.popular_in(category=category, trending=False)

    # Inspection (the dashboard's customer inspector) --------------------------------------

    def explain(
        self,
        history: History,
        *,
        now: float,
        category: str | None = None,
        exclude_ids: Collection[int] = (),
        context_ids: Sequence[int] = (),
        ann: AnnSearch | None = None,
        per_source: int = 10,
        top_history: int = 10,
    ) -> Explanation:
        """What :meth:`recommend` sees for ``history``, source by source, before rules and
        diversity: each source's best candidates with its raw score and its weighted share of
        the fused score, the weights in effect, the excluded products and the interests.

        Uses the same candidate set and blend as :meth:`recommend`, so a weighted score here is
        exactly that source's part of the item's score there.
        """
        self._check_fitted()
        cset = self.candidates(history, now=now, category=category, exclude_ids=exclude_ids,
                               context_ids=context_ids, ann=ann)  # fmt: skip
        fused = self.fuse(cset)
        profile = cset.profile
        sources: dict[str, list[SourceCandidate]] = {}
        n_candidates = len(fused.positions)
        rank_of = np.empty(n_candidates, dtype=np.int64)
        rank_of[fused.order] = np.arange(n_candidates)
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
                    pid = int(self._ids[cset.rows[position]])
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
        order = np.lexsort((profile.rows, -profile.weights))[:top_history]
        categories: dict[str, float] = {}
        for row, weight in zip(profile.rows.tolist(), profile.weights.tolist(), strict=True):
            name = self.category_of(row)
            if name:
                categories[name] = categories.get(name, 0.0) + float(weight)
        return Explanation(
            weights={s: float(w) for s, w in cset.weights.items() if w > 0},
            sources=dict(sorted(sources.items(), key=lambda kv: _SOURCE_ORDER[kv[0]])),
            candidates=n_candidates,
            excluded=tuple(sorted(cset.excluded)),
            history_weights=tuple(
                (int(self._ids[profile.rows[i]]), float(profile.weights[i])) for i in order
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


# Over-fetch of the similar-products search: the product itself and inactive ones drop out.
_SIMILAR_OVERFETCH = 16


class _Generation:
    """Stage 1's sources for one request, and their exact raw scores on any candidate."""

    def __init__(
        self,
        engine: HybridEngine,
        profile: _Profile,
        category_code: int,
        excluded_rows: np.ndarray,
        excluded_ids: set[int],
        *,
        now: float,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.code = category_code
        self.excluded_rows = excluded_rows
        self.excluded_ids = excluded_ids
        self.now = now
        self.collaborative_entries: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            np.empty(0, np.int64),
            np.empty(0),
            np.empty(0, np.int64),
        )
        self._collab: tuple[np.ndarray, np.ndarray] | None = None
        self._session_cache: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._ann_scores: dict[str, dict[int, float]] = {}
        self._row_ann: dict[str, dict[int, float]] = {}

    # Filters ---------------------------------------------------------------------------

    def allowed(self, rows: np.ndarray) -> np.ndarray:
        engine = self.engine
        ok = np.asarray(engine._active[rows], dtype=bool)
        if self.code >= 0:
            ok &= np.asarray(engine._category[rows]) == self.code
        if len(self.excluded_rows):
            ok &= ~np.isin(rows, self.excluded_rows)
        return ok

    def _best(self, rows: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
        """The ``size`` best allowed rows with a positive score, best first (ties by row).
        ``rows`` ascending; a partial sort (``top_k``), not a sort of every row."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = self.allowed(rows) & (scores > 0)
        rows, scores = rows[keep], np.asarray(scores, dtype=np.float64)[keep]
        return rows[top_k(scores, size)]

    def _first_allowed(self, ranked: np.ndarray, size: int) -> np.ndarray:
        """The first ``size`` allowed rows of a list ranked at fit time, read a growing prefix
        at a time (most requests read ``2 x size``)."""
        found: list[np.ndarray] = []
        count, start, step = 0, 0, max(2 * size, 64)
        while count < size and start < len(ranked):
            chunk = np.asarray(ranked[start : start + step], dtype=np.int64)
            kept = chunk[self.allowed(chunk)][: size - count]
            found.append(kept)
            count += len(kept)
            start += step
            step *= 2
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    # Sources ---------------------------------------------------------------------------

    def propose(
        self, source: str, *, size: int, search: AnnSearch
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """``(rows, their raw scores, extra ids)``: the source's best allowed candidates."""
        engine = self.engine
        empty = np.empty(0, dtype=np.int64)
        if source == "collaborative":
            cols, sums = self._collaborative()
            rows = self._best(cols, sums, size)
            return rows, nb.lookup(cols, sums, rows), []
        if source == "semantic":
            return self._semantic(size, search)
        if source in ("popularity", "trending"):
            values = engine._pop if source == "popularity" else engine._trend
            if self.code >= 0:
                group = engine._cat_pop if source == "popularity" else engine._cat_trend
                ranked = group.row(self.code)[0]
            else:
                ranked = engine._pop_top if source == "popularity" else engine._trend_top
            # Ranked best first with positive scores only, ties by row (``_best_rows``).
            rows = self._first_allowed(ranked, size)
            return rows, np.asarray(values[rows], dtype=np.float64), []
        if source == "new_arrivals":
            rows = self._first_allowed(self._new_arrivals_now(), size)
            return rows, self._new_arrival_scores(rows), []
        if source == "session":
            return self._session_candidates(size, search)
        return empty, np.empty(0), []

    def _collaborative(self) -> tuple[np.ndarray, np.ndarray]:
        """Collaborative sums over every product reachable from the history (sorted cols)."""
        if self._collab is None:
            cols, values, _ = self.collaborative_entries
            if len(cols):
                unique, inverse = np.unique(cols, return_inverse=True)
                sums = np.bincount(inverse, weights=values, minlength=len(unique))
            else:
                unique, sums = cols, values
            self._collab = (unique, sums)
        return self._collab

    def _semantic(self, size: int, search: AnnSearch) -> tuple[np.ndarray, np.ndarray, list[int]]:
        engine = self.engine
        interests = self.profile.interests
        if not interests:
            return np.empty(0, dtype=np.int64), np.empty(0), []
        if self.code >= 0 and len(engine.category_rows(self.code)) <= EXACT_SEARCH_MAX:
            # A category small enough to search exactly.
            rows = engine.category_rows(self.code).astype(np.int64)
            rows = rows[engine._has_vector[rows]]
            scores = self._interest_cosines(rows)
            best = self._best(rows, scores, size)
            return best, self._interest_cosines(best), []
        # Over-fetch what the filters may remove: the excluded products, and with a large
        # category the products outside it.
        fetch = size + len(self.excluded_ids)
        if self.code >= 0:
            share = len(engine.category_rows(self.code)) / max(engine.n_items, 1)
            fetch = int(min(fetch / max(share, 1e-3), MAX_CANDIDATES_PER_SOURCE * 4))
        found: dict[int, float] = {}
        for interest in interests:
            for pid, score in search(interest.vector, fetch):
                if pid not in self.excluded_ids:
                    found[int(pid)] = max(found.get(int(pid), -1.0), float(score))
        return self._split_found(found, size, key="semantic")

    def _split_found(
        self, found: Mapping[int, float], size: int, *, key: str
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Search results as candidates: fitted rows with their exact scores, products newer
        than the fit (``extra`` ids) with the search's, the ``size`` best of both together.

        A fitted product that had no vector at the fit is scored by the search too, so
        ``found`` scores count for every product the engine's own vectors cannot score.
        """
        engine = self.engine
        ids = np.fromiter(found, dtype=np.int64, count=len(found))
        rows = engine._rows_of(ids)
        fitted = rows[rows >= 0]
        blind = fitted[~np.asarray(engine._has_vector[fitted], dtype=bool)]
        self._row_ann[key] = {
            int(row): found[int(pid)]
            for row, pid in zip(rows.tolist(), ids.tolist(), strict=True)
            if row >= 0 and row in set(blind.tolist())
        }
        extra = {}
        if self.code < 0:  # Newer products have no category a filter could check.
            extra = {int(p): found[int(p)] for p in ids[rows < 0] if found[int(p)] > 0}
        self._ann_scores[key] = extra
        fitted_scores = self.raw(key, fitted)
        keep = self.allowed(fitted) & (fitted_scores > 0)
        pool = [
            (float(s), 0, int(r)) for r, s in zip(fitted[keep], fitted_scores[keep], strict=True)
        ]
        pool += [(s, 1, pid) for pid, s in extra.items()]
        pool.sort(key=lambda t: (-t[0], t[1], t[2]))
        chosen = pool[:size]
        rows_out = np.array(sorted(r for _, kind, r in chosen if kind == 0), dtype=np.int64)
        extra_out = [pid for _, kind, pid in chosen if kind == 1]
        return rows_out, self.raw(key, rows_out), extra_out

    def _interest_cosines(self, rows: np.ndarray) -> np.ndarray:
        engine = self.engine
        if not len(rows) or not self.profile.interests:
            return np.zeros(len(rows), dtype=np.float64)
        centroids = np.stack([i.vector for i in self.profile.interests]).astype(np.float32)
        sims = np.asarray(engine._vectors[rows] @ centroids.T, dtype=np.float64).max(axis=1)
        return np.where(engine._has_vector[rows], sims, 0.0)

    def _new_arrivals_now(self) -> np.ndarray:
        """The slice of the newest-first list of products without events that is within
        ``new_arrival_days`` of now (created after now is not an arrival yet): their scores
        decrease along it, so it is ranked already."""
        engine = self.engine
        listed = engine._new_top
        if not len(listed):
            return np.empty(0, dtype=np.int64)
        created = -np.asarray(engine._created[listed], dtype=np.float64)  # Ascending.
        days = engine.config.new_arrival_days
        start = int(np.searchsorted(created, -self.now, side="left"))
        end = int(np.searchsorted(created, -(self.now - days * DAY_SECONDS), side="right"))
        return np.asarray(listed[start:end], dtype=np.int64)

    def _new_arrival_scores(self, rows: np.ndarray) -> np.ndarray:
        engine = self.engine
        days = engine.config.new_arrival_days
        # Created after ``now`` (a replayed past) is not an arrival yet.
        age_days = (self.now - engine._created[rows]) / DAY_SECONDS
        fresh = (~engine._has_events[rows]) & (age_days >= 0) & (age_days <= days)
        return np.where(fresh, np.power(0.5, np.maximum(age_days, 0.0) / days), 0.0)

    def _session(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The session source's behavioural part (sorted cols, sums normalised to a maximum of
        1) and the unit mean vector of the context's products (None without vectors)."""
        if self._session_cache is None:
            engine = self.engine
            ctx = self.profile.context
            ones = np.ones(len(ctx))
            cooc_cols, cooc = engine._cooc.accumulate(ctx, ones)
            collab_cols, collab = engine._collaborative_model.accumulate(ctx, ones)
            cols = np.union1d(cooc_cols, collab_cols)
            behavioural = nb.lookup(cooc_cols, cooc, cols) + np.maximum(
                nb.lookup(collab_cols, collab, cols), 0.0
            )
            top = float(behavioural.max()) if len(behavioural) else 0.0
            if top > 0:
                behavioural = behavioural / top
            mean = None
            with_vector = ctx[engine._has_vector[ctx]] if len(ctx) else ctx
            if len(with_vector):
                centre = np.asarray(engine._vectors[with_vector], dtype=np.float64).mean(axis=0)
                norm = float(np.linalg.norm(centre))
                mean = (centre / norm).astype(np.float32) if norm > 0 else None
            self._session_cache = (cols, behavioural, mean)
        return self._session_cache

    def _session_scores(self, rows: np.ndarray) -> np.ndarray:
        cols, behavioural, mean = self._session()
        score = nb.lookup(cols, behavioural, rows)
        if mean is not None and len(rows):
            engine = self.engine
            cosines = np.asarray(engine._vectors[rows] @ mean, dtype=np.float64)
            score = score + 0.5 * np.maximum(np.where(engine._has_vector[rows], cosines, 0.0), 0)
        return score

    def _session_candidates(
        self, size: int, search: AnnSearch
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        if not len(self.profile.context):
            return np.empty(0, dtype=np.int64), np.empty(0), []
        cols, _, mean = self._session()
        found: dict[int, float] = {}
        if mean is not None:
            for pid, score in search(mean, size + len(self.excluded_ids)):
                if pid not in self.excluded_ids:
                    found[int(pid)] = 0.5 * max(float(score), 0.0)
        behavioural_ids = self.engine._ids[cols]
        for pid in behavioural_ids.tolist():
            found.setdefault(int(pid), 0.0)
        return self._split_found(found, size, key="session")

    # Exact raw scores on the candidate set ----------------------------------------------

    def raw(self, source: str, rows: np.ndarray) -> np.ndarray:
        """The source's exact raw score of fitted ``rows``."""
        engine = self.engine
        rows = np.asarray(rows, dtype=np.int64)
        if source == "collaborative":
            cols, sums = self._collaborative()
            values = self._with_borrowed(rows, nb.lookup(cols, sums, rows), cols, sums)
        elif source == "semantic":
            values = self._interest_cosines(rows)
        elif source == "popularity":
            values = np.asarray(engine._pop[rows], dtype=np.float64)
        elif source == "trending":
            values = np.asarray(engine._trend[rows], dtype=np.float64)
        elif source == "new_arrivals":
            values = self._new_arrival_scores(rows)
        elif source == "session" and len(self.profile.context):
            values = self._session_scores(rows)
        else:
            values = np.zeros(len(rows), dtype=np.float64)
        searched = self._row_ann.get(source)
        if searched:
            # Fitted products without a vector then: the search's score stands in for the
            # cosine (the semantic score; the session's similarity part).
            for i, row in enumerate(rows.tolist()):
                if row in searched:
                    values[i] = searched[row] if source == "semantic" else values[i] + searched[row]
        return values

    def score(self, source: str, rows: np.ndarray, extra: list[int]) -> np.ndarray:
        """The source's raw score at every candidate position: ``rows``, then ``extra`` ids."""
        known = self._ann_scores.get(source, {})
        tail = np.array([known.get(pid, 0.0) for pid in extra], dtype=np.float64)
        return np.concatenate([self.raw(source, rows), tail])

    def _with_borrowed(
        self, rows: np.ndarray, values: np.ndarray, cols: np.ndarray, sums: np.ndarray
    ) -> np.ndarray:
        """A product without events gets ``cold_collaborative`` x the best cosine-weighted
        collaborative score among its look-alikes (products with events nearest to it)."""
        engine = self.engine
        share = engine.config.cold_collaborative
        if share <= 0 or not engine._cold.nnz or not len(rows):
            return values
        lookalikes, cosines, _ = engine._cold.gather(rows, np.ones(len(rows)))
        if not len(lookalikes):
            return values
        borrowed = cosines * np.maximum(nb.lookup(cols, sums, lookalikes), 0.0)
        best = np.zeros(len(rows), dtype=np.float64)
        # ``gather`` lists the entries row by row, in the order of ``rows``.
        cold = engine._cold
        lengths = cold.indptr[rows + 1] - cold.indptr[rows]
        position = np.repeat(np.arange(len(rows)), lengths)
        np.maximum.at(best, position, borrowed)
        return values + share * best


def _summed_rows(*parts: tuple[nb.Neighbours, int]) -> tuple[np.ndarray, np.ndarray]:
    """The sum of some neighbour rows as ``(sorted cols, values)``."""
    cols_list, values_list = [], []
    for neighbours, row in parts:
        cols, values = neighbours.row(row)
        cols_list.append(cols.astype(np.int64))
        values_list.append(values.astype(np.float64))
    cols = np.concatenate(cols_list)
    values = np.concatenate(values_list)
    unique, inverse = np.unique(cols, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique))


def _sorted_part(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    return np.asarray(rows, dtype=np.int64)[order], np.asarray(scores, dtype=np.float64)[order]


def _best_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` highest positive scores, best first (ties by row)."""
    masked = np.where(scores > 0, scores, -np.inf)
    return top_k(masked, n).astype(np.int32)


def _best_rows_per_group(
    scores: np.ndarray, groups: np.ndarray, n: int, n_groups: int
) -> nb.Neighbours:
    """Each group's ``n`` best rows with a positive score, best first, as CSR rows per group
    (the values are the scores)."""
    rows = np.flatnonzero(scores > 0)
    order = rows[np.lexsort((rows, -scores[rows], groups[rows]))]
    group_of = groups[order]
    starts = np.searchsorted(group_of, np.arange(n_groups))
    rank = np.arange(len(order)) - starts[group_of]
    keep = order[rank < n]
    counts = np.bincount(groups[keep], minlength=n_groups)
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return nb.Neighbours(
        indptr=indptr,
        indices=keep.astype(np.int32),
        data=scores[keep].astype(np.float32),
    )


def _basket_incidence(inter: Interactions, *, event_types: Sequence[str]) -> sp.csr_matrix:
    """Baskets x items (1 where a basket holds the item) over events of ``event_types``."""
    codes = [i for i, t in enumerate(inter.event_types) if t in set(event_types)]
    mask = np.isin(inter.event_code, codes)
    baskets = inter.baskets()[mask]
    items = inter.item_idx[mask]
    _, basket_idx = np.unique(baskets, return_inverse=True)
    n_baskets = int(basket_idx.max()) + 1 if len(basket_idx) else 0
    return sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (basket_idx.reshape(-1), items)),
        shape=(n_baskets, inter.n_items),
    )


@dataclass(frozen=True, slots=True)
class SourceCandidate:
    """One candidate of one source in :meth:`HybridEngine.explain`.

    ``raw``: the source's own score (cosine, collaborative sum, decayed count...); ``weighted``:
    the source weight x the raw score normalised over the candidate set, i.e. its part of
    ``fused``, the item's blended score; ``fused_rank``: 1-based place in the fused order.
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


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
