"""The :class:`HybridEngine`: the fitted arrays, lookups over them, and the public methods.

Owns the engine's state (every fitted array, set by :mod:`.fitting` or mapped by
:mod:`.persistence`), the lookups every stage shares (product id to row, categories, titles,
vectors), configuration at request time (:meth:`~HybridEngine.with_config`), and the public
entry points, each of which hands the work to the module that owns it: :mod:`.candidates` and
:mod:`.sources` (stage 1), :mod:`.scoring` (stage 2), :mod:`.explanation` (reasons and the
inspector), :mod:`.lists` (similar, bought together, trending).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from recommender.ml import neighbours as nb
from recommender.ml.arrays import StringTable
from recommender.ml.sequential import SequentialModel
from recommender.ml.sorted_search import IdRows
from recommender.ranking.fusion import Rule
from recommender.ranking.types import RankedItem

from . import candidates as stage1
from . import explanation, fitting, lists, persistence, scoring
from .candidates import CandidateSet
from .config import FIT_TIME_FIELDS, REQUEST_TIME_FIELDS, ConfigError, EngineConfig
from .data import AnnSearch, EngineData, History
from .explanation import Explanation
from .exposure import exposure_pool
from .lists import SimilarMode
from .reranker import Reranker
from .scoring import Fused


class HybridEngine:
    """Fit once, recommend per request. See :mod:`recommender.ml.engine` for the two stages."""

    FIT_TIME_FIELDS = FIT_TIME_FIELDS
    REQUEST_TIME_FIELDS = REQUEST_TIME_FIELDS
    # Set on the copies :meth:`with_config` makes: the configuration the arrays were fitted with,
    # and the fit-time fields the requested configuration changes (waiting for the next fit).
    _fit_config: EngineConfig | None = None
    pending_fit_fields: tuple[str, ...] = ()

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.fitted_at: float | None = None
        # A learned reranker of the fused candidates (None: the linear blend's order).
        self.reranker: Reranker | None = None
        # Which collaborative model serves: "ease" (pruned) or "item_knn"; and why.
        self.collaborative_model = ""
        self.collaborative_note = ""
        # Seconds each part of the last fit took (popularity, item_knn, ease, cooccurrence,
        # cold_lookalikes), in fit order; empty for a loaded engine.
        self.fit_seconds: dict[str, float] = {}
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
        # The sequential source's model (:meth:`with_sequential`); without one it proposes none.
        self._sequential: SequentialModel | None = None
        # A fitted engine (offline: the evaluation, a fit's own checks) may build an hnswlib
        # index of its own vectors when no ``ann`` is given; a loaded one (serving) may not.
        self._may_build_index = True
        # What requests derive from the fitted arrays, built on first use (the exposure pool):
        # shared by every with_config copy, replaced by a fit.
        self._derived: dict[str, object] = {}

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
        ann_done: Callable[[], None] | None = None,
    ) -> HybridEngine:
        """Fit every model on ``data`` as of ``now``.

        ``ease_max_items``: EASE (exact, then pruned) when the catalogue has at most this many
        products, item-kNN neighbour lists above it (the services derive it from the memory
        budget: :func:`recommender.ml.neighbours.ease_memory_bytes`). ``threads``: for the
        neighbour computations (0: every core). ``ann``: a search over product vectors for the
        cold look-alikes of a large catalogue (the serving index); without it they are found
        exactly when that is cheap; ``ann_done`` is called once the fit has searched it for
        the last time, before the collaborative models. ``progress`` receives fractions from 0
        to 1.
        """
        self._derived = {}
        fitting.fit_engine(self, data, now=now, ease_max_items=ease_max_items, threads=threads,
                           ann=ann, progress=progress, ann_done=ann_done)  # fmt: skip
        return self

    # Lookups -----------------------------------------------------------------------------

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
        return self._id_rows()(product_ids)

    def prepare(self) -> HybridEngine:
        """Build now what requests would derive from the fitted arrays on first use: the id
        table and the exposure pool (when the configuration has exposure slots; about 4 bytes a
        product each, plus the pool's 2 MB). A web server's master process calls it before it
        forks, so its workers share those pages instead of each building a private copy on its
        first request (the sequential model builds its id table when it is loaded). Returns
        the engine."""
        self._id_rows()
        if self.config.exposure_slots > 0:
            exposure_pool(self)
        return self

    def _id_rows(self) -> IdRows:
        """The lookup of the fitted ids, built on first use (a table by id: 4 bytes a product)."""
        held = self._derived.get("id_rows")
        if not isinstance(held, IdRows) or held.ids is not self._ids:
            held = self._derived["id_rows"] = IdRows(self._ids)
        return held

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

    def category_of(self, row: int) -> str:
        return self._category_names[int(self._category[row])] if row >= 0 else ""

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

    @property
    def _collaborative_model(self) -> nb.Neighbours:
        return self._ease if self._ease is not None else self._knn

    def _vector_of(self, index: int) -> np.ndarray:
        if index < 0:
            return np.zeros(self._vectors.shape[1], dtype=np.float32)
        return np.asarray(self._vectors[index])

    def _check_fitted(self) -> None:
        if self.fitted_at is None:
            raise RuntimeError("HybridEngine: call fit() or load() first")

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

    def with_sequential(self, model: SequentialModel | None) -> HybridEngine:
        """This fitted engine with ``model`` as its ``sequential`` source (a shallow copy, like
        :meth:`with_config`; None: without one). The model is a separate artifact, fitted on
        its own schedule: it knows products by id, and scores those it never saw from their
        vectors."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._sequential = model
        return clone

    # Stage 1: candidates ------------------------------------------------------------------

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
        return stage1.candidate_set(self, history, now=now, category=category,
                                    exclude_ids=exclude_ids, context_ids=context_ids, ann=ann,
                                    all_sources=all_sources)  # fmt: skip

    def excluded(
        self,
        history: History,
        *,
        exclude_ids: Collection[int] = (),
        context_ids: Sequence[int] = (),
    ) -> set[int]:
        """Product ids never recommended for ``history`` with these arguments: those with an
        event of an excluded type (``exclude_event_types``), ``exclude_ids`` and the context."""
        return stage1.excluded_ids(self.config, history, exclude_ids=exclude_ids,
                                   context_ids=context_ids)  # fmt: skip

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

    # Stage 2: fusion and ranking ------------------------------------------------------------

    def fuse(self, cset: CandidateSet, weights: Mapping[str, float] | None = None) -> Fused:
        """Blend the admitted candidates of ``cset`` with ``weights`` (default: the weights in
        effect for the history): max-normalised raw scores over the admitted candidates,
        weighted and summed, ordered best first (ties by position), with the exposure pool of
        the configuration's exposure slots."""
        cfg = self.config
        return scoring.fuse(cset, weights, exposure_slots=cfg.exposure_slots,
                            exposure_min_score=cfg.exposure_min_score)  # fmt: skip

    def _fused(
        self,
        history: History,
        *,
        now: float,
        category: str | None,
        exclude_ids: Collection[int],
        context_ids: Sequence[int],
        ann: AnnSearch | None,
    ) -> Fused | None:
        cset = self.candidates(history, now=now, category=category, exclude_ids=exclude_ids,
                               context_ids=context_ids, ann=ann)  # fmt: skip
        fused = self.fuse(cset)
        if self.reranker is not None:
            self.reranker.rescore(self, fused)
        return fused if len(fused.positions) else None

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

    def rank_fused(self, fused: Fused, *, k: int) -> np.ndarray:
        """The top ``k`` engine rows of a fused candidate set, diversity applied."""
        return scoring.rank_fused(self, fused, k=k)

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
        fused = self._fused(history, now=now, category=category, exclude_ids=exclude_ids,
                            context_ids=context_ids, ann=ann)  # fmt: skip
        if fused is None:
            return []
        items = scoring.recommend_fused(self, fused, k=k, rules=rules)
        return explanation.with_reasons(self, items, fused.cset)

    # Lists that are not a customer's ---------------------------------------------------------

    def similar(
        self,
        product_id: int,
        *,
        k: int,
        mode: SimilarMode = "hybrid",
        ann: AnnSearch | None = None,
    ) -> list[RankedItem]:
        """Products like ``product_id``: by vector, by who bought them, or both (normalised)."""
        return lists.similar(self, product_id, k=k, mode=mode, ann=ann)

    def bought_together(self, product_id: int, *, k: int) -> list[RankedItem]:
        """Products that share baskets with ``product_id`` (co-occurrence), best first."""
        return lists.bought_together(self, product_id, k=k)

    def trending(self, *, k: int, category: str | None = None) -> list[RankedItem]:
        """Trending products as of the fit, then popular ones to fill the list."""
        return lists.trending(self, k=k, category=category)

    def popular(self, *, k: int, category: str | None = None) -> list[RankedItem]:
        """The most popular products as of the fit (time-decayed), optionally of one category:
        the "popularity only" baseline of the product lists."""
        return lists.popular(self, k=k, category=category)

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
        return explanation.explain(self, cset, per_source=per_source, top_history=top_history)

    # Persistence -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted engine to ``path`` (one memory-mappable file) atomically."""
        return persistence.save_engine(self, path)

    @staticmethod
    def artifact_version(path: str | os.PathLike[str]) -> int:
        """The format version of a saved engine: 2 for this format, 1 for the former ``.npz``
        files (which cannot be served: refit), 0 for anything else."""
        return persistence.artifact_version(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HybridEngine:
        """Map a saved engine read-only (the arrays stay in the shared page cache)."""
        return persistence.load_engine(cls, path)
