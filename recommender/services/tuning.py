"""Tuning: preview a candidate configuration before it is saved.

A preview answers two questions for a candidate :class:`EngineConfig` (and optionally a candidate
set of merchandising rules):

- **Lists**: what chosen customers get now (the active configuration and rules, exactly the
  serving path) and what they would get with the candidate, item by item, with the move of each
  product between the two lists.
- **Offline metrics**: Recall@10, NDCG@10, coverage@10 and intra-list diversity@10 of the active
  configuration and of the candidate on a fixed sample of customers (the protocol is below).

Neither refits per preview: the candidate's request-time fields are applied with
:meth:`HybridEngine.with_config` to the serving engine (lists) and to an engine fitted once on the
evaluation split (metrics); its fit-time fields keep their fitted values, are reported as pending
(``pending_fit_fields``) and take effect at the next fit.

Metric protocol (docs/tuning.md): leave-last-out exactly as ``manage.py evaluate`` defines it
(:func:`recommender.evaluation.splits.leave_last_out`, customers with at least
``MIN_ITEMS`` distinct products, every history product masked); the engine is fitted once on that
training split with the serving build's fit-time configuration; ``SAMPLE_SIZE`` of the held-out
customers are drawn with ``numpy.random.default_rng(SAMPLE_SEED)`` (all of them when fewer). The
sample, its histories and the fitted engine are prepared once per engine build (and saved beside
it for the other processes: :func:`tuning_sample`), so a preview only ranks the sample's
customers; source scores are cached per combination of the fields that change them, and metrics
per configuration, so moving a blend weight only re-blends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from threadpoolctl import ThreadpoolController

from recommender.evaluation import metrics
from recommender.evaluation.splits import held_out_sample, leave_last_out
from recommender.ml.engine import (
    AnnSearch,
    CandidateSet,
    EngineConfig,
    EngineData,
    History,
    HybridEngine,
)
from recommender.ml.interactions import tie_keys
from recommender.models import Customer, RecommendationKind
from recommender.ranking.rotation import Demote
from recommender.ranking.rules import RuleSet

from .evaluation import engine_data_load
from .index import validation_search
from .recommendations import (
    RecommendedProduct,
    ServingEngine,
    engine_config_active,
    serving_engine,
)
from .recommendations.lists import _recommend, customer_history
from .recommendations.rotation import rotation_demotion, touched_in
from .tuning_sample import SampleFiles, TuningSample, sample_load, sample_save

logger = logging.getLogger(__name__)

PREVIEW_K = 10
SAMPLE_SIZE = 300
SAMPLE_SEED = 0
MIN_ITEMS = 3
METRIC_K = 10
# (key, label) of the metrics a preview compares, in display order.
METRICS: tuple[tuple[str, str], ...] = (
    ("recall@10", "Recall@10"),
    ("ndcg@10", "NDCG@10"),
    ("coverage@10", "Coverage@10"),
    ("ild@10", "Diversity (ILD@10)"),
)
# Metrics kept per sample (distinct configurations previewed); the oldest are dropped.
_METRICS_CACHE = 64


# Lists --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewItem:
    """One product of a before or after list.

    ``moved`` compares the two lists: before position minus after position (positive: moved up
    in the candidate's list), ``None`` when the product is not in the other list (new in the
    after list, dropped from the before list).
    """

    position: int  # 1-based
    item: RecommendedProduct
    moved: int | None


@dataclass(frozen=True, slots=True)
class CustomerPreview:
    customer: Customer
    before: list[PreviewItem]
    after: list[PreviewItem]

    @property
    def changed(self) -> bool:
        return [p.item.product.pk for p in self.before] != [p.item.product.pk for p in self.after]


def _compare(
    before: list[RecommendedProduct], after: list[RecommendedProduct]
) -> tuple[list[PreviewItem], list[PreviewItem]]:
    at_before = {item.product.pk: i for i, item in enumerate(before, start=1)}
    at_after = {item.product.pk: i for i, item in enumerate(after, start=1)}

    def moved(pk: int, position: int, other: dict[int, int], *, sign: int) -> int | None:
        if pk not in other:
            return None
        return sign * (other[pk] - position)

    return (
        [
            PreviewItem(i, item, moved(item.product.pk, i, at_after, sign=-1))
            for i, item in enumerate(before, start=1)
        ],
        [
            PreviewItem(i, item, moved(item.product.pk, i, at_before, sign=1))
            for i, item in enumerate(after, start=1)
        ],
    )


def _candidate_serving(serving: ServingEngine, config: EngineConfig) -> ServingEngine:
    engine = serving.engine.with_config(config)
    return replace(serving, engine=engine, pending_fit_fields=engine.pending_fit_fields)


def _rotation(serving: ServingEngine, customer: Customer, history: History) -> Demote | None:
    return rotation_demotion(
        serving=serving, kind=RecommendationKind.CUSTOMER, customer=customer,
        touched=partial(touched_in, history),
    )  # fmt: skip


def customer_lists_preview(
    *,
    config: EngineConfig,
    customers: Sequence[Customer],
    k: int = PREVIEW_K,
    rules: RuleSet | None = None,
) -> list[CustomerPreview]:
    """Each customer's list now (active configuration and rules, as the API serves it) and with
    ``config`` (and ``rules`` when given; else the active rules). Nothing is logged."""
    serving = serving_engine()
    candidate = _candidate_serving(serving, config)
    out = []
    for customer in customers:
        history, now = customer_history(
            serving,
            customer,
            with_network=any(
                c.source_weights.get("social", 0.0) > 0
                for c in (serving.engine.config, candidate.engine.config)
            ),
        )
        # Each side with its configuration's rotation, from the customer's real impressions.
        before = _recommend(
            serving, history, now=now, k=k, category=None, exclude=(), context=(),
            rotation=_rotation(serving, customer, history),
        )  # fmt: skip
        after = _recommend(
            candidate, history, now=now, k=k, category=None, exclude=(), context=(), rules=rules,
            rotation=_rotation(candidate, customer, history),
        )  # fmt: skip
        before_items, after_items = _compare(before, after)
        out.append(CustomerPreview(customer=customer, before=before_items, after=after_items))
    return out


# Offline metrics on a sample ----------------------------------------------------------------


def _sample_build(
    load: Callable[[], EngineData],
    *,
    fit_config: EngineConfig,
    build_path: str,
    size: int,
    seed: int,
    ease: bool = True,
) -> TuningSample:
    """Split the shop's events, keep the sampled customers' histories and fit on the split.

    ``load`` gives the shop's data; this function holds the only reference to it, so the full
    event arrays are released before the fit on the split (at 50M events they are about 1.4 GB
    that would otherwise sit beside the fit's own peak).
    """
    started = time.perf_counter()
    data = load()
    inter = data.interactions
    split = leave_last_out(inter, min_items=MIN_ITEMS)
    eligible = len(split.held_out)
    held = held_out_sample(split.held_out, size=size, seed=seed)
    # The sampled customers' training events in time order (ties: the splits' seeded tie keys,
    # as the offline evaluation orders histories); only theirs are sorted.
    sampled = np.zeros(len(inter.user_ids), dtype=bool)
    sampled[[h.user for h in held]] = True
    train = np.flatnonzero(split.train & sampled[inter.user_idx])
    ties = tie_keys(inter, train)
    train = train[np.lexsort((train, ties, inter.timestamp[train], inter.user_idx[train]))]
    users = inter.user_idx[train]
    histories: list[History] = []
    for h in held:
        lo, hi = (
            np.searchsorted(users, h.user, side="left"),
            np.searchsorted(users, h.user, "right"),
        )
        events = train[lo:hi]
        histories.append(
            History(
                product_ids=data.item_ids[inter.item_idx[events]].tolist(),
                event_types=[inter.event_types[c] for c in inter.event_code[events]],
                timestamps=inter.timestamp[events].tolist(),
            )
        )
    event_types, events_total = tuple(inter.event_types), len(inter)
    train_inter = inter.subset(split.train)
    del inter, split, sampled, train, users
    data = replace(data, interactions=train_inter)  # The full event arrays go here.
    now = float(train_inter.timestamp.max()) if len(train_inter) else 0.0
    # The same collaborative model as the serving build (EASE where it used EASE).
    engine = HybridEngine(_masked(fit_config, event_types)).fit(
        data, now=now, ease_max_items=len(data.item_ids) if ease else 0
    )
    active = np.asarray(data.item_active, dtype=bool)
    return TuningSample(
        build_path=build_path,
        engine=engine,
        event_types=event_types,
        histories=histories,
        times=[h.time for h in held],
        targets=np.array([h.item for h in held], dtype=np.int64),
        vectors=data.item_vectors,
        has_vector=np.asarray(data.has_vector, dtype=bool),
        active=active,
        categories=list(data.item_categories),
        n_active=int(active.sum()),
        eligible=eligible,
        events=events_total,
        prepared_seconds=round(time.perf_counter() - started, 3),
    )


def _masked(config: EngineConfig, event_types: Sequence[str]) -> EngineConfig:
    """As :func:`recommender.evaluation.rankers.masked_config`: the protocol masks the whole
    history, so the exclusion policy does not change offline metrics."""
    return config.replace(exclude_event_types=list(event_types))


_sample_lock = threading.Lock()
_sample: TuningSample | None = None
_blas: ThreadpoolController | None = None
_cache_lock = threading.Lock()


def tuning_sample(*, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> TuningSample:
    """The metric sample of the serving build, kept until a newer build serves.

    Prepared once per build (loading every event and fitting on the split: about 20 s on the
    demo data) and saved beside the build's file, so the other web processes, and this one
    after a restart, load it in a second instead; a file lock lets one process prepare it while
    the others wait for its files.
    """
    global _sample
    serving = serving_engine()
    current = _sample
    if current is not None and current.build_path == serving.path:
        return current
    with _sample_lock:
        current = _sample
        if current is None or current.build_path != serving.path:
            files = SampleFiles.of(serving.path, size=size, seed=seed)
            with files.locked():
                current = sample_load(files, build_path=serving.path)
                if current is None:
                    current = _sample_build(
                        lambda: engine_data_load(embed_missing=False),
                        fit_config=serving.engine.fitted_config,
                        build_path=serving.path,
                        size=size,
                        seed=seed,
                        ease=serving.engine.collaborative_model == "ease",
                    )
                    sample_save(current, files)
            current.model_name = serving.model_name
            _sample = current
            logger.info(
                "Tuning sample of build %s: %d of %d customers (prepared in %.1f s)",
                serving.build_id,
                current.customers,
                current.eligible,
                current.prepared_seconds,
            )
        return current


def tuning_sample_reset() -> None:
    """Forget the prepared sample (tests)."""
    global _sample
    with _sample_lock:
        _sample = None


# Fields that change a customer's candidates and raw scores (the rest only change the blend).
_SCORE_FIELDS = (
    "behaviour_weights",
    "half_life_days",
    "n_interests",
    "cold_collaborative",
    "new_arrival_days",
    "candidates_per_source",
    "social_hop_decay",
    "social_half_life_days",
    "social_tie_floor",
)
# Candidate sets kept per sample (one per distinct combination of the fields above).
_SCORES_CACHE = 3


def _sample_search(sample: TuningSample) -> AnnSearch | None:
    """The semantic first stage of the sample's engine: its own exact search on a small
    catalogue, the serving index on a large one (an index of its own would take minutes)."""
    return validation_search(items=sample.engine.n_items, model_name=sample.model_name)


def _candidates(sample: TuningSample, config: EngineConfig) -> list[CandidateSet]:
    """Every sampled customer's candidate set under ``config``'s score fields, with every
    source on (stage 1, the slow part of a ranking: interests, neighbour sums, searches)."""
    key = json.dumps({name: config.to_dict()[name] for name in _SCORE_FIELDS}, sort_keys=True)
    with _cache_lock:
        cached = sample.scores.get(key)
        if cached is not None:
            sample.scores.move_to_end(key)
            return cached
    engine = sample.engine.with_config(_masked(config, sample.event_types))
    search = _sample_search(sample)
    out = [
        engine.candidates(history, now=at, ann=search, all_sources=True)
        for history, at in zip(sample.histories, sample.times, strict=True)
    ]
    with _cache_lock:
        sample.scores[key] = out
        while len(sample.scores) > _SCORES_CACHE:
            sample.scores.popitem(last=False)
    return out


def _rank(engine: HybridEngine, candidates: CandidateSet, *, k: int) -> np.ndarray:
    """The top ``k`` rows exactly as :meth:`HybridEngine.rank` orders them, from the stored
    candidate set: ``engine``'s own blend and diversity (stage 2) with its configuration."""
    fused = engine.fuse(candidates, engine.config.source_weights)
    if not len(fused.positions):
        return np.empty(0, dtype=np.int64)
    return engine.rank_fused(fused, k=k)


def sample_metrics(sample: TuningSample, config: EngineConfig) -> dict[str, float]:
    """Recall@10, NDCG@10, coverage@10 and ILD@10 of ``config`` on ``sample`` (cached).

    Source scores are computed once per combination of the fields that change them
    (``_SCORE_FIELDS``) and kept, so moving a blend weight or the diversity slider only
    re-blends (tests check the lists equal :meth:`HybridEngine.rank`'s).
    """
    key = config.to_json()
    with _cache_lock:
        cached = sample.cache.get(key)
        if cached is not None:
            sample.cache.move_to_end(key)
            return cached
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    k = METRIC_K
    recall = ndcg = 0.0
    lists: list[list[int]] = []
    ild: list[float] = []
    # One BLAS thread: per-customer products are small, and threads only contend.
    with _blas.limit(limits=1, user_api="blas"):
        candidates = _candidates(sample, config)
        engine = sample.engine.with_config(_masked(config, sample.event_types))
        for customer, target in zip(candidates, sample.targets, strict=True):
            ranked = _rank(engine, customer, k=k)
            rank = metrics.rank_of(ranked, int(target))
            recall += metrics.recall_at_k(rank, k)
            ndcg += metrics.ndcg_at_k(rank, k)
            lists.append(ranked.tolist())
            top = ranked[sample.has_vector[ranked]]
            ild.append(metrics.intra_list_diversity(sample.vectors[top]))
    n = max(sample.customers, 1)
    values = {
        f"recall@{k}": round(recall / n, 5),
        f"ndcg@{k}": round(ndcg / n, 5),
        f"coverage@{k}": round(metrics.catalogue_coverage(lists, n_items=sample.n_active, k=k), 5),
        f"ild@{k}": round(float(np.mean(ild)) if ild else 0.0, 5),
    }
    with _cache_lock:
        sample.cache[key] = values
        while len(sample.cache) > _METRICS_CACHE:
            sample.cache.popitem(last=False)
    return values


@dataclass(frozen=True, slots=True)
class MetricDelta:
    key: str
    label: str
    active: float
    candidate: float

    @property
    def delta(self) -> float:
        return round(self.candidate - self.active, 5)


def metric_deltas(*, config: EngineConfig) -> tuple[list[MetricDelta], TuningSample]:
    """The active configuration's and ``config``'s metrics on the serving build's sample."""
    sample = tuning_sample()
    _, active = engine_config_active()
    before = sample_metrics(sample, active)
    after = sample_metrics(sample, config)
    return [MetricDelta(key, label, before[key], after[key]) for key, label in METRICS], sample


# The whole preview --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    active_version: int
    build_id: int
    fit_config_version: int
    customers: list[CustomerPreview]
    metrics: list[MetricDelta]
    sample_customers: int
    eligible_customers: int
    pending_fit_fields: tuple[str, ...]  # Fit-time fields the candidate changes (next fit).
    seconds: float


def tuning_preview(
    *,
    config: EngineConfig,
    customers: Sequence[Customer],
    k: int = PREVIEW_K,
    rules: RuleSet | None = None,
) -> Preview:
    """Before/after lists for ``customers`` and the metric deltas of ``config`` (see module)."""
    started = time.perf_counter()
    serving = serving_engine()
    lists = customer_lists_preview(config=config, customers=customers, k=k, rules=rules)
    deltas, sample = metric_deltas(config=config)
    return Preview(
        active_version=serving.config_version,
        build_id=serving.build_id,
        fit_config_version=serving.fit_config_version,
        customers=lists,
        metrics=deltas,
        sample_customers=sample.customers,
        eligible_customers=sample.eligible,
        pending_fit_fields=serving.engine.fit_time_changes(config),
        seconds=round(time.perf_counter() - started, 3),
    )
