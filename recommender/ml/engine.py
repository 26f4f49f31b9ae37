"""The hybrid recommendation engine: candidate sources, fusion, diversity and reasons.

Framework-free: the services layer loads :class:`EngineData` from the database, calls
:meth:`HybridEngine.fit` in a worker, saves the artifact, and web processes :meth:`~HybridEngine.
load` it read-only. A customer's history is passed with every request (:class:`History`), so a
new event changes the next list at once, without refitting.

Sources (each weighted by :class:`EngineConfig.source_weights`):

- ``semantic``: cosine between the customer's interest vectors (the seed's q_u, split into up to
  ``n_interests`` clusters) and product vectors. Works for products without any event, so a new
  product is recommendable as soon as it is embedded.
- ``collaborative``: EASE (or item-kNN above ``EASE.MAX_ITEMS`` products) on the customer's
  behaviour- and recency-weighted history.
- ``popularity`` / ``trending``: time-decayed popularity and recent-vs-long-run rate.
- ``new_arrivals``: products created within ``new_arrival_days`` that have no events yet.
- ``session``: the products in the current request (``context_ids``), through co-occurrence and
  vector similarity; the only personal source for an anonymous visitor.

Products unknown to the fitted engine (embedded after the last fit) can appear in a history:
pass their vectors in ``History.extra_vectors`` (and titles in ``History.extra_titles``) and they
shape the interest vectors; as candidates they come only through the ``ann`` callable (the
serving index, which already holds them), since the engine's own arrays do not.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
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

from .collaborative import EASE, CoOccurrence, ItemKNN, Popularity, top_k, user_item_matrix
from .interactions import DAY_SECONDS, Interactions, decay
from .interest import Interest, event_vector_weights, multi_interest

ARTIFACT_FORMAT = "recsite-engine"
# Products with events a product without any is compared with (collaborative_scores).
COLD_LOOKALIKES = 20
ARTIFACT_VERSION = 1

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


class ConfigError(ValueError):
    """A recommendation configuration field is missing, of the wrong type, or out of range."""


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
            if not _is_number(value) or not value > 0:
                raise ConfigError(f"{name}: expected a number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        cold = self.cold_collaborative
        if not _is_number(cold) or cold < 0 or not math.isfinite(cold):
            raise ConfigError(f"cold_collaborative: expected a number >= 0, got {cold!r}")
        object.__setattr__(self, "cold_collaborative", float(cold))
        if not _is_number(self.mmr_lambda) or not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(f"mmr_lambda: expected a number from 0 to 1, got {self.mmr_lambda!r}")
        object.__setattr__(self, "mmr_lambda", float(self.mmr_lambda))
        for name in ("n_interests", "candidates_per_source", "knn_neighbours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {value!r}")
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

    ``interactions.item_ids`` must equal ``item_ids`` (same order).
    """

    item_ids: np.ndarray  # int64 product keys
    item_vectors: np.ndarray  # (n, d) float32, L2-normalised; zero rows where has_vector is False
    has_vector: np.ndarray  # bool
    item_titles: list[str]
    item_categories: list[str]
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

    history: np.ndarray  # dense weights over items (known products only)
    strongest_type: dict[int, str]  # item index -> event type with the most weight
    interests: list[Interest]
    event_vectors: np.ndarray  # rows behind the interests
    event_labels: list[tuple[str, str]]  # (event type, title) per row
    context: np.ndarray  # dense weights of the session context


@dataclass
class _Fused:
    rows: np.ndarray
    extra_ids: list[int]
    total: np.ndarray
    components: dict[str, np.ndarray]
    profile: _Profile
    order: np.ndarray


class HybridEngine:
    """Fit once, recommend per request. See the module notes for the sources."""

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
    # borrowed share are computed per request; the look-alike matrix does not depend on them).
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
        self._ids: np.ndarray = np.empty(0, dtype=np.int64)
        self._vectors: np.ndarray = np.empty((0, 0), dtype=np.float32)
        self._has_vector: np.ndarray = np.empty(0, dtype=bool)
        self._titles: list[str] = []
        self._categories: list[str] = []
        self._created: np.ndarray = np.empty(0, dtype=np.float64)
        self._active: np.ndarray = np.empty(0, dtype=bool)
        self._has_events: np.ndarray = np.empty(0, dtype=bool)
        self._popularity = Popularity()
        self._ease: EASE | None = None
        self._knn = ItemKNN()
        self._cooc = CoOccurrence()
        self._cold = sp.csr_matrix((0, 0), dtype=np.float32)
        self._pos: dict[int, int] = {}

    # Fitting -----------------------------------------------------------------------------

    def fit(self, data: EngineData, *, now: float) -> HybridEngine:
        cfg = self.config
        self._ids = np.asarray(data.item_ids, dtype=np.int64)
        self._vectors = np.ascontiguousarray(data.item_vectors, dtype=np.float32)
        self._has_vector = np.asarray(data.has_vector, dtype=bool)
        self._titles = list(data.item_titles)
        self._categories = list(data.item_categories)
        self._created = np.asarray(data.item_created_at, dtype=np.float64)
        self._active = np.asarray(data.item_active, dtype=bool)
        self._pos = {int(pid): i for i, pid in enumerate(self._ids)}
        inter = data.interactions
        self._has_events = np.bincount(inter.item_idx, minlength=len(self._ids)) > 0
        self._popularity = Popularity(
            half_life_days=cfg.popularity_half_life_days, window_days=cfg.trending_window_days
        ).fit(inter, behaviour_weights=cfg.behaviour_weights, now=now)
        matrix = user_item_matrix(inter, behaviour_weights=cfg.behaviour_weights)
        self._knn = ItemKNN(neighbours=cfg.knn_neighbours).fit(matrix)
        self._ease = (
            EASE(l2=cfg.ease_lambda).fit(matrix) if len(self._ids) <= EASE.MAX_ITEMS else None
        )
        self._cooc = CoOccurrence().fit(inter, event_types=cfg.cooccurrence_event_types)
        self._cold = self._cold_lookalikes()
        self.fitted_at = float(now)
        return self

    @property
    def item_ids(self) -> np.ndarray:
        return self._ids

    def ids_without_vector(self, product_ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """The ids of ``product_ids`` the engine cannot score by meaning: unknown to the fit or
        without a vector then. Only these need the ``ann`` hook of :meth:`recommend`."""
        ids = np.asarray(product_ids, dtype=np.int64)
        return ids[~np.isin(ids, self._ids[self._has_vector])]

    def index_of(self, product_id: int) -> int:
        try:
            return self._pos[int(product_id)]
        except KeyError:
            raise KeyError(f"product {product_id} is not in the fitted engine") from None

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

    # Scoring -----------------------------------------------------------------------------

    def collaborative_scores(self, history: np.ndarray) -> np.ndarray:
        """EASE scores of a dense history vector (item-kNN when the catalogue is too large).

        A product without events has no collaborative score of its own; it gets
        ``cold_collaborative`` x the best cosine-weighted score among its look-alikes (the
        ``COLD_LOOKALIKES`` products with events nearest to it by vector), so a new product
        competes with the products it resembles as soon as it is embedded and fitted.
        """
        self._check_fitted()
        if not history.any():
            return np.zeros(len(self._ids), dtype=np.float64)
        if self._ease is not None:
            scores = np.asarray(self._ease.score(history), dtype=np.float64)
        else:
            scores = self._knn.score(history)
        cold = self._cold
        if self.config.cold_collaborative <= 0 or not cold.nnz:
            return scores
        borrowed = cold.data * np.maximum(scores[cold.indices], 0.0)
        rows = np.flatnonzero(np.diff(cold.indptr))
        scores = scores.copy()
        scores[rows] += self.config.cold_collaborative * np.maximum.reduceat(
            borrowed, cold.indptr[rows]
        )
        return scores

    def _cold_lookalikes(self) -> sp.csr_matrix:
        """Rows: products with a vector and no events; columns: their ``COLD_LOOKALIKES``
        nearest products with events and a vector; values: the cosine (negatives as 0)."""
        n = len(self._ids)
        cold = np.flatnonzero(self._has_vector & ~self._has_events)
        warm = np.flatnonzero(self._has_vector & self._has_events)
        m = min(COLD_LOOKALIKES, len(warm))
        if not len(cold) or m == 0:
            return sp.csr_matrix((n, n), dtype=np.float32)
        rows, cols, values = [], [], []
        warm_vectors = self._vectors[warm]
        for start in range(0, len(cold), 1024):  # Bounded memory for a large cold catalogue.
            block = cold[start : start + 1024]
            sims = self._vectors[block] @ warm_vectors.T
            top = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            rows.append(np.repeat(block, m))
            cols.append(warm[top].ravel())
            values.append(np.maximum(np.take_along_axis(sims, top, axis=1), 0.0).ravel())
        return sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
            dtype=np.float32,
        )

    def knn_scores(self, history: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self._knn.score(history)

    def popularity_scores(self, *, trending: bool = False) -> np.ndarray:
        scores = self._popularity.trend if trending else self._popularity.scores
        assert scores is not None
        return np.asarray(scores, dtype=np.float64)

    def _profile(self, history: History, *, now: float, context_ids: Sequence[int]) -> _Profile:
        cfg = self.config
        n = len(self._ids)
        pids = [int(p) for p in history.product_ids]
        weights = event_vector_weights(
            event_types=list(history.event_types),
            timestamps=np.asarray(history.timestamps, dtype=np.float64),
            behaviour_weights=cfg.behaviour_weights,
            half_life_days=cfg.half_life_days,
            now=now,
        )
        dense = np.zeros(n, dtype=np.float64)
        strongest: dict[int, tuple[float, str]] = {}
        vec_rows: list[np.ndarray] = []
        vec_weights: list[float] = []
        labels: list[tuple[str, str]] = []
        for pid, kind, w in zip(pids, history.event_types, weights, strict=True):
            idx = self._pos.get(pid)
            if idx is not None:
                dense[idx] += w
                if w > strongest.get(idx, (-1.0, ""))[0]:
                    strongest[idx] = (float(w), kind)
                if self._has_vector[idx]:
                    vec_rows.append(self._vectors[idx])
                    vec_weights.append(float(w))
                    labels.append((kind, self._titles[idx]))
            elif pid in history.extra_vectors:
                vec_rows.append(np.asarray(history.extra_vectors[pid], dtype=np.float32))
                vec_weights.append(float(w))
                labels.append((kind, history.extra_titles.get(pid, f"product {pid}")))
        if history.query_vectors is not None and len(history.query_vectors):
            q_weights = cfg.behaviour_weights.get("search", 0.0) * decay(
                np.asarray(history.query_timestamps, dtype=np.float64),
                now=now,
                half_life_days=cfg.half_life_days,
            )
            texts = list(history.query_texts) or [""] * len(history.query_vectors)
            for vector, w, text in zip(history.query_vectors, q_weights, texts, strict=True):
                vec_rows.append(np.asarray(vector, dtype=np.float32))
                vec_weights.append(float(w))
                labels.append(("search", text))
        vectors = np.stack(vec_rows) if vec_rows else np.empty((0, self._vectors.shape[1]))
        interests = multi_interest(vectors, np.asarray(vec_weights), n_interests=cfg.n_interests)
        context = np.zeros(n, dtype=np.float64)
        for pid in context_ids:
            idx = self._pos.get(int(pid))
            if idx is not None:
                context[idx] = 1.0
        return _Profile(
            history=dense,
            strongest_type={i: kind for i, (_, kind) in strongest.items()},
            interests=interests,
            event_vectors=vectors,
            event_labels=labels,
            context=context,
        )

    def source_scores(
        self,
        history: History,
        *,
        now: float,
        context_ids: Sequence[int] = (),
    ) -> dict[str, np.ndarray]:
        """Every source's raw score for every fitted product (exact semantic search).

        The evaluation tunes the blend on these; :meth:`recommend` uses the same numbers.
        """
        profile = self._profile(history, now=now, context_ids=context_ids)
        return self._dense_scores(profile, now=now)

    def _dense_scores(
        self, profile: _Profile, *, now: float, weights: Mapping[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        cfg = self.config
        n = len(self._ids)
        out: dict[str, np.ndarray] = {}
        weights = cfg.source_weights if weights is None else weights
        if weights.get("collaborative", 0) > 0:
            out["collaborative"] = self.collaborative_scores(profile.history)
        if weights.get("semantic", 0) > 0 and profile.interests:
            centroids = np.stack([i.vector for i in profile.interests]).astype(np.float32)
            sims = np.asarray(self._vectors @ centroids.T, dtype=np.float64).max(axis=1)
            out["semantic"] = np.where(self._has_vector, sims, 0.0)
        if weights.get("popularity", 0) > 0:
            out["popularity"] = self.popularity_scores()
        if weights.get("trending", 0) > 0:
            out["trending"] = self.popularity_scores(trending=True)
        if weights.get("new_arrivals", 0) > 0:
            age_days = np.maximum(now - self._created, 0.0) / DAY_SECONDS
            # Created after ``now`` (a replayed past) is not an arrival yet.
            age_days = (now - self._created) / DAY_SECONDS
            fresh = (~self._has_events) & (age_days >= 0) & (age_days <= cfg.new_arrival_days)
            age_days = np.maximum(age_days, 0.0)
            out["new_arrivals"] = np.where(fresh, np.power(0.5, age_days / cfg.new_arrival_days), 0)
        if weights.get("session", 0) > 0 and profile.context.any():
            ctx = profile.context
            behavioural = self._cooc.score(ctx) + np.maximum(self.collaborative_scores(ctx), 0)
            ctx_rows = np.flatnonzero(ctx > 0)
            ctx_rows = ctx_rows[self._has_vector[ctx_rows]]
            if len(ctx_rows):
                mean = self._vectors[ctx_rows].mean(axis=0)
                norm = float(np.linalg.norm(mean))
                semantic = self._vectors @ (mean / norm) if norm > 0 else np.zeros(n)
            else:
                semantic = np.zeros(n)
            top = float(behavioural.max()) if len(behavioural) else 0.0
            behavioural = behavioural / top if top > 0 else behavioural
            out["session"] = behavioural + 0.5 * np.maximum(np.asarray(semantic, np.float64), 0)
        return out

    # Recommending ------------------------------------------------------------------------

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
        """Candidates (fitted rows, then unknown ids from ``ann``), fused scores, components."""
        self._check_fitted()
        cfg = self.config
        profile = self._profile(history, now=now, context_ids=context_ids)
        excluded = excluded_products(
            product_ids=list(history.product_ids),
            event_types=list(history.event_types),
            exclude_event_types=cfg.exclude_event_types,
            also=[*exclude_ids, *context_ids],
        )
        allowed = self._active.copy()
        if category is not None:
            allowed &= np.array([c == category for c in self._categories], dtype=bool)
        for pid in excluded:
            idx = self._pos.get(pid)
            if idx is not None:
                allowed[idx] = False
        weights = dict(cfg.source_weights)
        if history.is_empty:
            # A cold customer: only the non-personal sources can say anything.
            weights["collaborative"] = weights["semantic"] = 0.0
            if weights.get("trending", 0) <= 0 and weights.get("popularity", 0) <= 0:
                # Small next to the session source, which should lead when there is context.
                weights["popularity"], weights["trending"] = 0.2, 0.1
        dense = self._dense_scores(profile, now=now, weights=weights)
        dense = {s: v for s, v in dense.items() if weights.get(s, 0) > 0}
        # The engine's own vectors give every fitted product its exact semantic score (the
        # same numbers the evaluation ranks with). ``ann`` only adds what they cannot score:
        # products embedded after the fit (unknown ids, or fitted rows that had no vector then).
        ann_scores: dict[int, float] = {}
        if ann is not None and profile.interests and weights.get("semantic", 0) > 0:
            for interest in profile.interests:
                for pid, score in ann(interest.vector, cfg.candidates_per_source + len(excluded)):
                    pid = int(pid)
                    idx = self._pos.get(pid)
                    if pid in excluded or (idx is not None and self._has_vector[idx]):
                        continue
                    ann_scores[pid] = max(ann_scores.get(pid, -1.0), float(score))
        # Candidates: the union of each source's best allowed products.
        parts = [
            top_k(np.where(allowed & (scores > 0), scores, -np.inf), cfg.candidates_per_source)
            for scores in dense.values()
        ]
        extra_ids: list[int] = []
        ann_rows: list[int] = []
        for pid in ann_scores:
            idx = self._pos.get(pid)
            if idx is None:
                extra_ids.append(pid)
            elif allowed[idx]:
                ann_rows.append(idx)
        parts.append(np.asarray(ann_rows, dtype=np.int64))
        if category is not None:
            extra_ids = []  # Unknown products have no category the filter could check.
        rows = np.unique(np.concatenate(parts)).astype(np.int64)
        size = len(rows) + len(extra_ids)
        if size == 0:
            return None
        source_arrays: dict[str, np.ndarray] = {}
        for source, scores in dense.items():
            source_arrays[source] = np.concatenate([scores[rows], np.zeros(len(extra_ids))])
        if ann_scores:
            semantic = source_arrays.get("semantic")
            if semantic is None:
                semantic = np.zeros(size, dtype=np.float64)
            for position in np.flatnonzero(~self._has_vector[rows]):
                semantic[position] = ann_scores.get(int(self._ids[rows[position]]), 0.0)
            semantic[len(rows) :] = [ann_scores[pid] for pid in extra_ids]
            source_arrays["semantic"] = semantic
        total, components = blend(source_arrays, weights, size=size)
        order = np.lexsort((np.arange(size), -total))
        return _Fused(
            rows=rows,
            extra_ids=extra_ids,
            total=total,
            components=components,
            profile=profile,
            order=order,
        )

    def rank(
        self,
        history: History,
        *,
        k: int,
        now: float,
        category: str | None = None,
        exclude_ids: Collection[int] = (),
        context_ids: Sequence[int] = (),
    ) -> np.ndarray:
        """Row indices of the top ``k`` fitted products, as :meth:`recommend` orders them but
        without reasons or rules (the offline evaluation ranks thousands of customers)."""
        if k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        fused = self._fused(
            history,
            now=now,
            category=category,
            exclude_ids=exclude_ids,
            context_ids=context_ids,
            ann=None,
        )
        if fused is None:
            return np.empty(0, dtype=np.int64)
        if self.config.mmr_lambda >= 1.0 and self.config.max_per_category is None:
            return fused.rows[fused.order[:k]]
        head = fused.order[: min(len(fused.order), max(5 * k, 50))]
        rows = fused.rows[head]
        chosen = mmr_order(
            fused.total[head],
            self._vectors[rows],
            k=k,
            lam=self.config.mmr_lambda,
            categories=[self._categories[r] for r in rows],
            max_per_category=self.config.max_per_category,
        )
        return rows[chosen]

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
        sources when ``context_ids`` are given). Fitted products are scored by meaning over
        the engine's own vectors, exactly as :meth:`rank` does; ``ann(vector, n)`` (the serving
        index) adds the products those cannot score (see :meth:`ids_without_vector`: embedded
        after the fit), which become candidates on their semantic score alone. Pass it only
        when such products exist: it costs a search per interest. ``rules`` (merchandising, a
        later issue) run on the fused list before diversity. Reasons are written for the
        returned items only.
        """
        if k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        cfg = self.config
        fused = self._fused(
            history,
            now=now,
            category=category,
            exclude_ids=exclude_ids,
            context_ids=context_ids,
            ann=ann,
        )
        if fused is None:
            return []
        rows, extra_ids, total, components, profile = (
            fused.rows,
            fused.extra_ids,
            fused.total,
            fused.components,
            fused.profile,
        )
        order = fused.order
        size = len(order)
        reorders = bool(rules) or cfg.mmr_lambda < 1.0 or cfg.max_per_category is not None
        # Rules and diversity look past the first k; without them the fused order is final.
        depth = min(size, max(5 * k, 50) if reorders else k)
        # Items without reasons for the head (rules and diversity need scores and sources only);
        # reasons cost a lookup each, so only the k returned get them.
        head: list[RankedItem] = []
        while True:
            head.extend(
                self._ranked_item(
                    position=int(p),
                    rows=rows,
                    extra_ids=extra_ids,
                    total=total,
                    components=components,
                )
                for p in order[len(head) : depth]
            )
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
                categories=[self._category_of(item.index) for item in items],
                max_per_category=cfg.max_per_category,
            )
        return [self._with_reasons(items[i], profile) for i in chosen]

    def similar(
        self,
        product_id: int,
        *,
        k: int,
        mode: Literal["semantic", "behavioural", "hybrid"] = "hybrid",
    ) -> list[RankedItem]:
        """Products like ``product_id``: by vector, by who bought them, or both (normalised)."""
        self._check_fitted()
        if mode not in ("semantic", "behavioural", "hybrid"):
            raise ValueError(f"mode: expected semantic, behavioural or hybrid, got {mode!r}")
        idx = self.index_of(product_id)
        title = self._titles[idx]
        parts: dict[str, np.ndarray] = {}
        if mode in ("semantic", "hybrid") and self._has_vector[idx]:
            sims = np.asarray(self._vectors @ self._vectors[idx], dtype=np.float64)
            parts["semantic"] = np.where(self._has_vector, sims, 0.0)
        if mode in ("behavioural", "hybrid"):
            parts["collaborative"] = self._knn.neighbours_of(idx) + self._cooc.related(idx)
        allowed = self._active.copy()
        allowed[idx] = False
        return self._simple_list(
            parts,
            allowed=allowed,
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
        allowed = self._active.copy()
        allowed[idx] = False
        return self._simple_list(
            {"session": self._cooc.related(idx)},
            allowed=allowed,
            k=k,
            reason_for={"session": lambda _: reason_text.bought_together(title=title)},
        )

    def trending(self, *, k: int, now: float, category: str | None = None) -> list[RankedItem]:
        """Trending products (as of the fit; ``now`` is accepted for symmetry), then popular."""
        self._check_fitted()
        allowed = self._active.copy()
        if category is not None:
            allowed &= np.array([c == category for c in self._categories], dtype=bool)
        trend = self.popularity_scores(trending=True)
        popular = self.popularity_scores()
        # Popular products fill the list behind the trending ones (a quiet week has few).
        top = float(popular.max()) if len(popular) and popular.max() > 0 else 1.0
        parts = {"trending": np.where(trend > 0, trend + 1.0, 0.0), "popularity": popular / top}
        items = self._simple_list(
            parts,
            allowed=allowed,
            k=k,
            reason_for={
                "trending": lambda i: reason_text.popular_in(
                    category=self._categories[i], trending=True
                ),
                "popularity": lambda i: reason_text.popular_in(
                    category=self._categories[i], trending=False
                ),
            },
            normalise_parts=False,
        )
        return items

    # Persistence -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted engine to ``path`` (one .npz file) atomically: tmp + os.replace."""
        self._check_fitted()
        path = Path(path)
        meta = {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "config": self.config.to_dict(),
            "fitted_at": self.fitted_at,
            "titles": self._titles,
            "categories": self._categories,
        }
        arrays: dict[str, np.ndarray] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "ids": self._ids,
            "vectors": self._vectors,
            "has_vector": self._has_vector,
            "created": self._created,
            "active": self._active,
            "has_events": self._has_events,
            "pop_scores": np.asarray(self._popularity.scores),
            "pop_trend": np.asarray(self._popularity.trend),
            "cooc_baskets": np.asarray(self._cooc.basket_counts),
        }
        if self._ease is not None and self._ease.weights is not None:
            arrays["ease"] = self._ease.weights
        for name, matrix in (
            ("knn", self._knn.similarity),
            ("cooc", self._cooc.counts),
            ("cold", self._cold),
        ):
            assert matrix is not None
            csr = sp.csr_matrix(matrix)
            arrays[f"{name}_data"] = csr.data
            arrays[f"{name}_indices"] = csr.indices
            arrays[f"{name}_indptr"] = csr.indptr
            arrays[f"{name}_shape"] = np.array(csr.shape)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                buffer = io.BytesIO()
                np.savez(buffer, **arrays)  # type: ignore[arg-type]
                handle.write(buffer.getvalue())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)  # Readers see the old artifact or the new one, never half.
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HybridEngine:
        with np.load(Path(path), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("version") != ARTIFACT_VERSION:
            raise ValueError(f"{path}: not a {ARTIFACT_FORMAT} v{ARTIFACT_VERSION} artifact")
        engine = cls(EngineConfig.from_dict(meta["config"]))
        engine.fitted_at = meta["fitted_at"]
        engine._titles = meta["titles"]
        engine._categories = meta["categories"]
        engine._ids = arrays["ids"]
        engine._vectors = arrays["vectors"]
        engine._has_vector = arrays["has_vector"]
        engine._created = arrays["created"]
        engine._active = arrays["active"]
        engine._has_events = arrays["has_events"]
        engine._pos = {int(pid): i for i, pid in enumerate(engine._ids)}
        cfg = engine.config
        engine._popularity = Popularity(
            half_life_days=cfg.popularity_half_life_days,
            window_days=cfg.trending_window_days,
            scores=arrays["pop_scores"],
            trend=arrays["pop_trend"],
        )
        engine._ease = (
            EASE(l2=cfg.ease_lambda, weights=arrays["ease"]) if "ease" in arrays else None
        )

        def csr(name: str) -> sp.csr_matrix:
            shape = tuple(int(x) for x in arrays[f"{name}_shape"])
            return sp.csr_matrix(
                (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
                shape=shape,
            )

        engine._knn = ItemKNN(neighbours=cfg.knn_neighbours, similarity=csr("knn"))
        engine._cooc = CoOccurrence(counts=csr("cooc"), basket_counts=arrays["cooc_baskets"])
        # Artifacts saved before the look-alikes existed: derive them (vectors and events).
        engine._cold = csr("cold") if "cold_data" in arrays else engine._cold_lookalikes()
        return engine

    # Internals ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if self.fitted_at is None:
            raise RuntimeError("HybridEngine: call fit() or load() first")

    def _vector_of(self, index: int) -> np.ndarray:
        if index < 0:
            return np.zeros(self._vectors.shape[1], dtype=np.float32)
        return self._vectors[index]

    def _category_of(self, index: int) -> str:
        return self._categories[index] if index >= 0 else ""

    def _simple_list(
        self,
        parts: Mapping[str, np.ndarray],
        *,
        allowed: np.ndarray,
        k: int,
        reason_for: Mapping[str, Callable[[int], str]],
        normalise_parts: bool = True,
    ) -> list[RankedItem]:
        if k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        if not parts:
            return []
        if normalise_parts:
            total, components = blend(parts, dict.fromkeys(parts, 1.0), size=len(allowed))
        else:
            components = {s: np.maximum(v, 0.0) for s, v in parts.items()}
            total = sum(components.values(), np.zeros(len(allowed)))
        masked = np.where(allowed & (total > 0), total, -np.inf)
        items = []
        for idx in top_k(masked, k):
            comps = {s: float(c[idx]) for s, c in components.items() if c[idx] > 0}
            sources = tuple(sorted(comps, key=lambda s: -comps[s]))
            items.append(
                RankedItem(
                    index=int(idx),
                    product_id=int(self._ids[idx]),
                    score=float(total[idx]),
                    sources=sources,
                    components=comps,
                    reasons=tuple(reason_for[s](int(idx)) for s in sources),
                )
            )
        return items

    def _ranked_item(
        self,
        *,
        position: int,
        rows: np.ndarray,
        extra_ids: list[int],
        total: np.ndarray,
        components: Mapping[str, np.ndarray],
    ) -> RankedItem:
        """The fused candidate at ``position``, without reasons (see :meth:`_with_reasons`)."""
        if position < len(rows):
            index = int(rows[position])
            product_id = int(self._ids[index])
        else:
            index = -1
            product_id = extra_ids[position - len(rows)]
        comps = {s: float(c[position]) for s, c in components.items() if c[position] > 0}
        sources = tuple(sorted(comps, key=lambda s: (-comps[s], _SOURCE_ORDER[s])))
        return RankedItem(
            index=index,
            product_id=product_id,
            score=float(total[position]),
            sources=sources,
            components=comps,
            reasons=(),
        )

    def _with_reasons(self, item: RankedItem, profile: _Profile) -> RankedItem:
        reasons = tuple(
            dict.fromkeys(self._reason(source, item.index, profile) for source in item.sources)
        )
        if not reasons:
            category = self._category_of(item.index)
            reasons = (reason_text.popular_in(category=category, trending=False),)
        return replace(item, reasons=reasons)

    def _reason(self, source: str, index: int, profile: _Profile) -> str:
        category = self._category_of(index)
        if source == "collaborative" and index >= 0:
            touched = np.flatnonzero(profile.history > 0)
            if len(touched):
                if self._ease is not None:
                    contrib = profile.history[touched] * self._ease.weights[touched, index]  # type: ignore[index]
                else:
                    assert self._knn.similarity is not None
                    sim = np.asarray(self._knn.similarity[touched, index].toarray()).ravel()
                    contrib = profile.history[touched] * sim
                best = int(touched[int(np.argmax(contrib))])
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
            kind, title = profile.event_labels[best]
            if kind == "search" and title:
                return reason_text.matches_search(query=title)
            return reason_text.similar_to(event_type=kind, title=title)
        if source == "session" and index >= 0:
            ctx = np.flatnonzero(profile.context > 0)
            if len(ctx):
                vector = self._vectors[index]
                best = int(ctx[int(np.argmax(self._vectors[ctx] @ vector))])
                related = self._cooc.related(best)[index] if self._cooc.counts is not None else 0
                title = self._titles[best]
                if related > 0:
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

        Uses the same candidate set and blend as :meth:`recommend` (``_fused``), so a weighted
        score here is exactly that source's part of the item's score there.
        """
        self._check_fitted()
        cfg = self.config
        fused = self._fused(
            history,
            now=now,
            category=category,
            exclude_ids=exclude_ids,
            context_ids=context_ids,
            ann=ann,
        )
        profile = (
            fused.profile if fused else self._profile(history, now=now, context_ids=context_ids)
        )
        # The weights ``_fused`` used: a cold customer's personal sources are off and the
        # non-personal ones stand in (the same rule as there).
        weights = dict(cfg.source_weights)
        if history.is_empty:
            weights["collaborative"] = weights["semantic"] = 0.0
            if weights.get("trending", 0) <= 0 and weights.get("popularity", 0) <= 0:
                weights["popularity"], weights["trending"] = 0.2, 0.1
        excluded = excluded_products(
            product_ids=list(history.product_ids),
            event_types=list(history.event_types),
            exclude_event_types=cfg.exclude_event_types,
            also=[*exclude_ids, *context_ids],
        )
        sources: dict[str, list[SourceCandidate]] = {}
        n_candidates = 0
        if fused is not None:
            n_candidates = len(fused.order)
            raw = self._dense_scores(profile, now=now, weights=weights)
            rank_of = np.empty(n_candidates, dtype=np.int64)
            rank_of[fused.order] = np.arange(n_candidates)
            n_rows = len(fused.rows)
            for source, part in fused.components.items():
                positions = np.flatnonzero(part > 0)
                best = positions[np.lexsort((positions, -part[positions]))][:per_source]
                rows_raw = raw.get(source)
                out = []
                for p in best:
                    p = int(p)
                    if p < n_rows:
                        index = int(fused.rows[p])
                        pid = int(self._ids[index])
                        value = float(rows_raw[index]) if rows_raw is not None else 0.0
                    else:
                        pid = fused.extra_ids[p - n_rows]
                        value = 0.0  # Known only to the ann search; its score is in ``weighted``.
                    out.append(
                        SourceCandidate(
                            product_id=pid,
                            raw=value,
                            weighted=float(part[p]),
                            fused=float(fused.total[p]),
                            fused_rank=int(rank_of[p]) + 1,
                        )
                    )
                sources[source] = out
        touched = np.flatnonzero(profile.history > 0)
        heaviest = touched[np.lexsort((touched, -profile.history[touched]))][:top_history]
        categories: dict[str, float] = {}
        for idx in touched:
            name = self._categories[idx]
            if name:
                categories[name] = categories.get(name, 0.0) + float(profile.history[idx])
        return Explanation(
            weights={s: float(w) for s, w in weights.items() if w > 0},
            sources=dict(sorted(sources.items(), key=lambda kv: _SOURCE_ORDER[kv[0]])),
            candidates=n_candidates,
            excluded=tuple(sorted(excluded)),
            history_weights=tuple((int(self._ids[i]), float(profile.history[i])) for i in heaviest),
            category_weights=tuple(
                sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:top_history]
            ),
            interests=tuple(
                (
                    float(interest.weight),
                    tuple(profile.event_labels[m] for m in interest.members[:5]),
                )
                for interest in profile.interests
            ),
        )


@dataclass(frozen=True, slots=True)
class SourceCandidate:
    """One candidate of one source in :meth:`HybridEngine.explain`.

    ``raw``: the source's own score (cosine, EASE score, decayed count...); ``weighted``: the
    source weight x the raw score normalised over the candidate set, i.e. its part of
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
