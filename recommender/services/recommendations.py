"""Recommendations: the versioned configuration, fitted engine builds, and request-time lists.

A worker fits :class:`~recommender.ml.engine.HybridEngine` on every product and event, saves it
atomically under a name of its own and only then marks its :class:`EngineBuild` READY (like the
vector index). Web processes load the newest READY build, rechecking every
``RECSITE_INDEX_REFRESH_SECONDS``, so a new fit is served without a restart.

Everything personal is read at request time: the customer's newest events (bounded by
``HISTORY_LIMIT``) become the engine's ``History``, so a new event changes the next list without
any batch job. The engine's semantic source searches the serving vector index (which also holds
products embedded since its build), so a product embedded after the last fit is recommendable at
once. Every returned product is checked against the database: an inactive product never comes
back. Every served list is logged with a recommendation id for click attribution.

A saved configuration version serves at once (within ``RECSITE_INDEX_REFRESH_SECONDS``): its
request-time fields (blend and behaviour weights, half-life, diversity, exclusions) are applied to
the fitted engine without a refit, and the log records that version. Its fit-time fields (EASE,
kNN, popularity and co-occurrence settings) take effect at the next fit (docs/tuning.md).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.db.models.sql import InsertQuery
from django.utils import timezone
from threadpoolctl import ThreadpoolController

from jobs.choices import BuildStatus
from jobs.models import Job
from jobs.services.artifact_store import ArtifactStoreError, artifact_store, unique_name
from jobs.services.artifacts import (
    artifact_local,
    artifact_publishing,
    build_mark_failed,
    builds_prune,
)
from recommender.metrics import list_served
from recommender.ml.engine import (
    EXACT_SEARCH_MAX,
    AnnSearch,
    ConfigError,
    EngineConfig,
    History,
    HybridEngine,
)
from recommender.models import (
    Customer,
    EngineBuild,
    Product,
    ProductEmbedding,
    RecommendationConfig,
    RecommendationKind,
    RecommendationLog,
)
from recommender.ranking.fusion import Rule
from recommender.ranking.rules import HeadRecorder, RuleSet, apply_positional
from recommender.ranking.types import RankedItem
from recommender.selectors.recommendations import customer_recent_events
from recommender.selectors.training import product_event_count
from recommender.selectors.tuning import engine_build_serving

from .budget import PeakMemory, fit_plan, memory_budget
from .embeddings import get_embedder, vector_from_bytes
from .evaluation import engine_data_load
from .index import serving_index
from .merchandising import merchandising_rules_serving
from .search import product_similar
from .serving_mode import serving_forgotten, serving_keep_inherited, serving_noted

logger = logging.getLogger(__name__)

SimilarMode = Literal["semantic", "behavioural", "hybrid"]
# Extra results asked of the engine for product-to-product lists, so products deactivated since
# the fit can be dropped and the list still holds k.
_OVERFETCH = 10
# Times a product list's head is deepened (x4 each) when filters leave fewer than k.
_MAX_DEEPENING = 5
# Search queries of a history embedded per request (the newest distinct ones).
_MAX_QUERIES = 5


class EngineNotReady(Exception):
    """No engine has been fitted yet: recommendations need one (``manage.py train``)."""

    def __init__(self) -> None:
        super().__init__(
            "No recommendation engine has been fitted yet: run `manage.py train` "
            "or POST /api/v1/jobs/train."
        )


# Configuration ------------------------------------------------------------------------------


def recommendation_config_active() -> RecommendationConfig:
    """The active configuration; version 1 (the engine's defaults) is created on first use."""
    active = RecommendationConfig.objects.filter(is_active=True).first()
    if active is not None:
        return active
    with transaction.atomic():
        newest = RecommendationConfig.objects.select_for_update().order_by("-version").first()
        if newest is not None:
            # Unreachable through these services; a hand-edited table still gets one active.
            newest.is_active = True
            newest.save(update_fields=["is_active"])
            return newest
        try:
            with transaction.atomic():
                return RecommendationConfig.objects.create(
                    version=1,
                    config=EngineConfig().to_dict(),
                    note="defaults",
                    is_active=True,
                )
        except IntegrityError:
            # Another process created version 1 at the same moment.
            return RecommendationConfig.objects.get(is_active=True)


def recommendation_config_save(
    *,
    config: EngineConfig | Mapping[str, Any],
    created_by: User | None = None,
    note: str = "",
) -> RecommendationConfig:
    """Store ``config`` as a new version and make it the active one.

    A mapping is validated by :meth:`EngineConfig.from_dict` (a ``ConfigError`` names the bad
    field). Versions are never edited, so the history says what served when.
    """
    engine_config = config if isinstance(config, EngineConfig) else EngineConfig.from_dict(config)
    recommendation_config_active()  # Version 1 exists before any later one.
    with transaction.atomic():
        # Locking the active row serialises concurrent saves.
        list(RecommendationConfig.objects.select_for_update().filter(is_active=True))
        last = RecommendationConfig.objects.aggregate(last=Max("version"))["last"] or 0
        RecommendationConfig.objects.filter(is_active=True).update(is_active=False)
        row = RecommendationConfig.objects.create(
            version=last + 1,
            config=engine_config.to_dict(),
            note=note,
            created_by=created_by,
            is_active=True,
        )
    serving_engine_recheck()  # This process serves the new version from its next request.
    return row


def recommendation_config_restore(
    *, version: int, created_by: User | None = None
) -> RecommendationConfig:
    """Make an earlier version's configuration active again, as a new version."""
    old = RecommendationConfig.objects.filter(version=version).first()
    if old is None:
        raise ValueError(f"version: no recommendation configuration has version {version}")
    return recommendation_config_save(
        config=old.config, created_by=created_by, note=f"restored from version {version}"
    )


def engine_config_active() -> tuple[int, EngineConfig]:
    row = recommendation_config_active()
    return row.version, EngineConfig.from_dict(row.config)


# Fitting ------------------------------------------------------------------------------------


# The artifact store's folder (or key prefix) of engine builds.
ENGINE_KIND = "engine"
# As for the index: a newer build that cannot be loaded leaves the loaded one serving.
_LOAD_ERRORS = (ArtifactStoreError, OSError, ValueError)


def engine_dir() -> Path:
    """The local folder a new engine build is saved into before it is published."""
    return artifact_store().staging_dir(ENGINE_KIND)


def engine_build(
    *, job: Job | None = None, progress: Callable[[float], None] | None = None
) -> EngineBuild:
    """Fit the engine on every product and event with the active configuration; publish it.

    The fit first estimates its memory from counts (:func:`recommender.services.budget.fit_plan`)
    and stops with :class:`~recommender.services.budget.MemoryBudgetExceeded` before reading the
    events when it would not fit the budget; the serving build stays as it was. The engine's
    clock (``now`` of popularity, trending and new arrivals) is the newest event, so a shop whose
    data stops in the past (the demo data ends in 2011) still has a "this week".
    """
    report = progress or (lambda _: None)
    version, config = engine_config_active()
    embedder = get_embedder()
    model_name = embedder.model_name
    build = EngineBuild.objects.create(
        status=BuildStatus.BUILDING, config_version=version, model_name=model_name, job=job
    )
    started = time.perf_counter()
    try:
        with PeakMemory() as peak:
            plan = fit_plan(
                items=Product.objects.count(),
                events=product_event_count(),
                dimension=embedder.dimension,
                neighbours=config.knn_neighbours,
            )
            plan.estimate.check()
            # The reindex job embeds; a fit uses the vectors as they are.
            data = engine_data_load(embed_missing=False, progress=lambda f: report(0.3 * f))
            stamps = data.interactions.timestamp
            now = float(stamps.max()) if len(stamps) else time.time()
            engine = HybridEngine(config).fit(
                data,
                now=now,
                ease_max_items=plan.ease_max_items,
                threads=settings.RECSITE_FIT_THREADS,
                ann=_lazy_index_search(model_name),
                progress=lambda f: report(0.3 + 0.6 * f),
            )
            name = unique_name("engine", build.pk, ".engine")
            with artifact_publishing(kind=ENGINE_KIND, name=name) as publication:
                engine.save(publication.main)
    except Exception as exc:
        build_mark_failed(model=EngineBuild, pk=build.pk, exc=exc)
        raise
    build.status = BuildStatus.READY
    build.path = publication.location  # The commit point: readers see the build from now on.
    build.item_count = len(data.item_ids)
    build.customer_count = data.interactions.n_users
    build.event_count = len(data.interactions)
    build.events_until = (
        datetime.fromtimestamp(now, tz=timezone.get_current_timezone()) if len(stamps) else None
    )
    build.fit_seconds = round(time.perf_counter() - started, 3)
    build.collaborative = engine.collaborative_note
    build.memory = {
        "estimate": plan.estimate.as_dict(),
        "budget": memory_budget(),
        "peak_rss": peak.peak,
    }
    build.finished_at = timezone.now()
    build.save()
    engine_builds_prune()
    report(1.0)
    logger.info(
        "Engine build %s: %d products, %d customers, %d events, config v%d, %s, %.1f s",
        build.pk,
        build.item_count,
        build.customer_count,
        build.event_count,
        version,
        build.collaborative,
        build.fit_seconds,
    )
    return build


def _lazy_index_search(model_name: str) -> AnnSearch:
    """The serving index as a search, loaded only if the fit asks (the cold look-alikes of a
    large catalogue)."""

    def search(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        index = serving_index(model_name=model_name)
        return index.query(np.asarray(vector, dtype=np.float32), k=n)[0].pairs()

    return search


def engine_builds_prune(*, keep: int | None = None) -> int:
    """Remove the files of READY engine builds beyond the newest ``keep``; returns how many."""
    return builds_prune(model=EngineBuild, kind=ENGINE_KIND, keep=keep)


# Serving ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServingEngine:
    """The engine that serves now: the newest READY build with the active configuration."""

    build_id: int
    path: str
    model_name: str
    # The active configuration version, whose request-time fields this engine applies (see
    # HybridEngine.with_config); it is what RecommendationLog records.
    config_version: int
    engine: HybridEngine
    fitted_at: float
    # The version the build was fitted with, and the fit-time fields the active version
    # changes since then (they take effect at the next fit).
    fit_config_version: int
    pending_fit_fields: tuple[str, ...]


_lock = threading.Lock()
_serving: ServingEngine | None = None
# The loaded build as fitted: (its row, local path, engine); the active configuration is
# applied to it.
_loaded: tuple[EngineBuild, str, HybridEngine] | None = None
# (build location, active version) behind _serving.
_serving_key: tuple[str, int] | None = None
_checked_at = 0.0


def serving_engine() -> ServingEngine:
    """The newest READY engine build with the active configuration applied, loaded once per
    process. A newer build and a newly saved configuration version are both picked up, checked
    at most every ``RECSITE_INDEX_REFRESH_SECONDS`` (one small query; none in between).

    The configuration's request-time fields apply at once, without a refit (a shallow copy of
    the fitted engine, made once per build and version); its fit-time fields wait for the next
    fit (``pending_fit_fields``). Raises :class:`EngineNotReady` when no build exists. A gunicorn
    worker that inherited its build from the master keeps it until the master rolls a newer one
    in (``serving_mode``); a newer build that cannot be loaded leaves the loaded one serving.
    """
    global _serving, _loaded, _serving_key, _checked_at
    current = _serving
    if current is not None and time.monotonic() - _checked_at < (
        settings.RECSITE_INDEX_REFRESH_SECONDS
    ):
        return current
    with _lock:
        build, version = engine_build_serving()
        if build is None:
            _serving = _loaded = _serving_key = None
            serving_forgotten(ENGINE_KIND)
            raise EngineNotReady()
        if _loaded is not None and serving_keep_inherited(
            ENGINE_KIND, current=_loaded[0].pk, newest=build.pk
        ):
            build = _loaded[0]
        # Keyed by location, which is unique per build: a reused primary key (SQLite after a
        # rollback) never serves another build's engine.
        if _loaded is None or _loaded[0].path != build.path:
            try:
                path = artifact_local(model=EngineBuild, kind=ENGINE_KIND, location=build.path)
                _loaded = (build, str(path), HybridEngine.load(path))
            except _LOAD_ERRORS:
                if _loaded is None:
                    raise
                logger.exception("Cannot load engine build %s; build %s keeps serving",
                                 build.pk, _loaded[0].pk)  # fmt: skip
                build = _loaded[0]
            else:
                serving_noted(ENGINE_KIND, build.pk)
                logger.info("Loaded engine build %s (fitted with config v%d)", build.pk,
                            build.config_version)  # fmt: skip
        if _serving is None or version is None or _serving_key != (build.path, version):
            active = recommendation_config_active()  # Read in full only when it changed.
            _serving = _serving_with(build=build, path=_loaded[1], fitted=_loaded[2], active=active)
            _serving_key = (build.path, active.version)
        _checked_at = time.monotonic()
        return _serving


def _serving_with(
    *, build: EngineBuild, path: str, fitted: HybridEngine, active: RecommendationConfig
) -> ServingEngine:
    try:
        config = EngineConfig.from_dict(active.config)
    except ConfigError:
        # Only a hand-edited row can be invalid (the services validate): keep the fit's.
        logger.exception("Config v%d is invalid; serving build %s as fitted", active.version,
                         build.pk)  # fmt: skip
        config, version = fitted.config, build.config_version
    else:
        version = active.version
    engine = fitted.with_config(config)
    if engine.pending_fit_fields:
        logger.info("Config v%d: %s take effect at the next fit", version,
                    ", ".join(engine.pending_fit_fields))  # fmt: skip
    logger.info("Serving engine build %s with config v%d", build.pk, version)
    return ServingEngine(
        build_id=build.pk,
        # The local file (in the artifact cache for object storage): the tuning sample is
        # saved beside it.
        path=path,
        model_name=build.model_name,
        config_version=version,
        engine=engine,
        fitted_at=float(fitted.fitted_at or time.time()),
        fit_config_version=build.config_version,
        pending_fit_fields=engine.pending_fit_fields,
    )


def serving_engine_recheck() -> None:
    """Make this process's next :func:`serving_engine` call look for a new build and version
    at once (after saving a configuration here; other processes follow within the refresh)."""
    global _checked_at
    _checked_at = 0.0


def serving_engine_reset() -> None:
    """Forget the loaded engine (tests)."""
    global _serving, _loaded, _serving_key, _checked_at
    with _lock:
        _serving = _loaded = _serving_key = None
        _checked_at = 0.0
        serving_forgotten(ENGINE_KIND)


@dataclass(frozen=True, slots=True)
class RecommendedProduct:
    product: Product
    score: float
    sources: tuple[str, ...]
    components: Mapping[str, float]
    reasons: tuple[str, ...]
    # Merchandising: the rules that moved this product, and whether it fills a promotion slot.
    rule_ids: tuple[int, ...] = ()
    promoted: bool = False

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else ""


@dataclass(frozen=True, slots=True)
class Recommendations:
    # None for a list that was not logged (``log=False``: a dashboard view of it).
    recommendation_id: uuid.UUID | None
    kind: str
    config_version: int | None
    engine_build: int | None
    items: list[RecommendedProduct] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One event of an anonymous session, as sent in a request body."""

    product: Product
    event_type: str = "view"
    occurred_at: datetime | None = None


def _knows(engine: HybridEngine, product_id: int) -> bool:
    return bool(engine.known([product_id])[0])


def serving_ann(serving: ServingEngine) -> AnnSearch | None:
    """The serving vector index as the engine's ``ann`` hook: the semantic source's first stage
    (and the session's), a bounded graph search whatever the catalogue size. It also holds the
    products embedded after the fit (its side buffer), so they are recommendable at once.

    None (the engine then searches its own vectors exactly) only while no index holds anything
    and the catalogue is small enough for an exact search (``EXACT_SEARCH_MAX``).
    """
    index = serving_index(model_name=serving.model_name)
    if index.buffer is None and serving.engine.n_items <= EXACT_SEARCH_MAX:
        return None

    def search(vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        return index.query(np.asarray(vector, dtype=np.float32), k=n)[0].pairs()

    return search


_blas: ThreadpoolController | None = None


def _one_blas_thread() -> Any:
    """One BLAS thread for this request's matrix products.

    A web server runs several requests at once (workers x threads, about one per core); BLAS
    threads on top of them only fight for the same cores. The controller is built once (it
    scans the loaded libraries); each limit costs microseconds.
    """
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def _seconds(at: datetime | float) -> float:
    return at if isinstance(at, float) else at.timestamp()


def _history(
    serving: ServingEngine,
    events: Sequence[tuple[int | None, str, datetime | float, str]],
) -> tuple[History, float]:
    """The engine's History of ``(product_id, event_type, occurred_at, search_query)`` rows
    (``occurred_at`` an aware datetime or epoch seconds), and the request's clock: the newer of
    the fit's clock and the newest event."""
    engine = serving.engine
    product_rows = [e for e in events if e[0] is not None]
    query_rows = [e for e in events if e[0] is None and e[3]][:_MAX_QUERIES]
    stamps = [_seconds(e[2]) for e in events]
    now = max([serving.fitted_at, *stamps])
    ids = [int(e[0]) for e in product_rows]  # type: ignore[arg-type]
    unknown = {pid for pid, known in zip(ids, engine.known(ids), strict=True) if not known}
    extra_vectors: dict[int, np.ndarray] = {}
    extra_titles: dict[int, str] = {}
    if unknown:
        # Products embedded after the fit: their vectors let them shape the interests.
        for pid, dimension, vector, title in ProductEmbedding.objects.filter(
            product_id__in=unknown, model_name=serving.model_name
        ).values_list("product_id", "dimension", "vector", "product__title"):
            extra_vectors[pid] = vector_from_bytes(vector, dimension)
            extra_titles[pid] = title
    query_vectors = None
    if query_rows:
        query_vectors = get_embedder().embed([e[3] for e in query_rows])
    history = History(
        product_ids=[int(e[0]) for e in product_rows],  # type: ignore[arg-type]
        event_types=[e[1] for e in product_rows],
        timestamps=[_seconds(e[2]) for e in product_rows],
        query_vectors=query_vectors,
        query_timestamps=[_seconds(e[2]) for e in query_rows],
        query_texts=[e[3] for e in query_rows],
        extra_vectors=extra_vectors,
        extra_titles=extra_titles,
    )
    return history, now


def _active_products(ranked: Iterable[RankedItem], *, k: int) -> list[RecommendedProduct]:
    ranked = list(ranked)
    active = Product.objects.filter(
        pk__in=[item.product_id for item in ranked], is_active=True
    ).in_bulk()
    out = [
        RecommendedProduct(
            product=active[item.product_id],
            score=round(item.score, 6),
            sources=tuple(item.sources),
            components={s: round(v, 6) for s, v in item.components.items()},
            # What a rule did explains the position best, so it comes first.
            reasons=(*item.rule_reasons, *item.reasons),
            rule_ids=tuple(dict.fromkeys(item.rule_ids)),
            promoted=item.promoted,
        )
        for item in ranked
        if item.product_id in active
    ]
    return out[:k]


def _logged(
    *,
    kind: RecommendationKind,
    serving: ServingEngine | None,
    items: list[RecommendedProduct],
    customer: Customer | None = None,
    log: bool = True,
) -> Recommendations:
    """``items`` as a served list, logged for click attribution unless ``log`` is off (a
    dashboard showing a list is not an impression)."""
    config_version = serving.config_version if serving else None
    engine_build = serving.build_id if serving else None
    recommendation_id = None
    if log:
        row = RecommendationLog(
            kind=kind,
            customer=customer,
            config_version=config_version,
            engine_build=engine_build,
            product_ids=[item.product.external_id for item in items],
        )
        if (
            connection.vendor == "postgresql"
            and connection.get_autocommit()
            and not connection.in_atomic_block
        ):
            _insert_without_flush(row)
        else:
            with transaction.atomic():
                row.save(force_insert=True)
        recommendation_id = row.recommendation_id
        list_served(kind=str(kind), item_sources=(item.sources for item in items))
    return Recommendations(
        recommendation_id=recommendation_id,
        kind=kind,
        config_version=config_version,
        engine_build=engine_build,
        items=items,
    )


def _insert_without_flush(log: RecommendationLog) -> None:
    """Insert ``log`` on PostgreSQL in one round trip, without waiting for a disk flush.

    The log is for attribution, not money: losing the last few milliseconds of rows in a
    database crash is acceptable, waiting for a flush on every request is not, and neither are
    the four round trips of an ORM transaction (BEGIN, SET LOCAL, INSERT, COMMIT) on the
    hottest endpoint. Django's own compiler writes the INSERT (defaults, ``auto_now_add``,
    JSON adaptation); the statements travel together, which client-side binding (Django's
    default for psycopg) allows.
    """
    fields = [f for f in RecommendationLog._meta.local_concrete_fields if not f.primary_key]
    query = InsertQuery(RecommendationLog)
    query.insert_values(fields, [log])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"BEGIN; SET LOCAL synchronous_commit TO OFF; {sql}; COMMIT", params)
        except Exception:
            # A failed statement leaves the explicit transaction open and aborted.
            cursor.execute("ROLLBACK")
            raise


def _recommend(
    serving: ServingEngine,
    history: History,
    *,
    now: float,
    k: int,
    category: str | None,
    exclude: Collection[int],
    context: Sequence[int],
    rules: RuleSet | None = None,
    surface: RecommendationKind = RecommendationKind.CUSTOMER,
) -> list[RecommendedProduct]:
    """The engine's list with the merchandising ``rules`` applied (default: the rules valid
    now, by the wall clock; a preview passes its own, e.g. from ``rules_compile``), those of
    them that apply to ``surface`` lists.

    Boosts, buries and filters run in the engine's hook, on the scored head before diversity;
    pins and promotion slots run here, on the final list, so diversity cannot move them.
    """
    # Exactly k are asked for: reasons cost time per item, and a product deactivated since the
    # fit is rare. When one turns up, the engine is asked again without it.
    ruleset = merchandising_rules_serving(surface=surface) if rules is None else rules.on(surface)
    ann = serving_ann(serving)
    hook: list[Rule] = [ruleset.score_hook] if ruleset.score_rules else []
    head = HeadRecorder() if ruleset.positional else None
    if head is not None:
        hook.append(head)
    with _one_blas_thread():
        ranked = serving.engine.recommend(
            history,
            k=k,
            now=now,
            category=category or None,
            exclude_ids=exclude,
            context_ids=context,
            ann=ann,
            rules=hook,
        )
    if head is not None:
        pool = {item.product_id: item for item in head.items}
        blocked = _not_insertable(
            serving, history, ruleset, exclude=exclude, context=context, category=category,
            known={*pool, *(item.product_id for item in ranked)},
        )  # fmt: skip
        ranked = apply_positional(ranked, ruleset.positional, k=k, pool=pool, blocked=blocked)
    items = _active_products(ranked, k=k)
    if len(items) < len(ranked):
        kept = {item.product.pk for item in items}
        gone = {item.product_id for item in ranked if item.product_id not in kept}
        return _recommend(
            serving, history, now=now, k=k, category=category,
            exclude={*exclude, *gone}, context=context, rules=ruleset, surface=surface,
        )  # fmt: skip
    return items


def _not_insertable(
    serving: ServingEngine,
    history: History,
    ruleset: RuleSet,
    *,
    exclude: Collection[int],
    context: Sequence[int],
    category: str | None,
    known: Collection[int],
) -> set[int]:
    """Products a pin or promotion must not insert: what the engine would exclude for this
    customer (bought, ``exclude``, ``context``), what a filter removes, and, with a category,
    products outside it (those the engine proposed already passed its category filter)."""
    blocked = serving.engine.excluded(history, exclude_ids=exclude, context_ids=context)
    blocked |= ruleset.score_hook.removed  # Prepared once per set of rules (RuleSet.filtered).
    return blocked | _outside_category(ruleset, category, known=known, blocked=blocked)


def _outside_category(
    ruleset: RuleSet, category: str | None, *, known: Collection[int], blocked: Collection[int]
) -> set[int]:
    """The products the pins and promotions of ``ruleset`` would insert that lie outside
    ``category`` (none without one). ``known`` candidates already passed the category filter;
    ``blocked`` ones are not inserted anyway."""
    if not category:
        return set()
    outside = {
        pid for rule in ruleset.positional for pid in rule.product_ids if pid not in known
    } - set(blocked)
    if not outside:
        return set()
    return outside - set(
        Product.objects.filter(pk__in=outside, category=category).values_list("pk", flat=True)
    )


def customer_recommendations(
    *,
    customer: Customer,
    k: int,
    category: str | None = None,
    exclude: Collection[int] = (),
    context: Sequence[int] = (),
    rules: RuleSet | None = None,
    log: bool = True,
) -> Recommendations:
    """The top ``k`` products for ``customer`` from their newest events, read now.

    ``exclude`` and ``context`` are product primary keys: never return these / the products the
    customer is looking at now (they also steer the session source). A customer without events
    gets trending and popular products (and session-based ones with a context). ``rules``
    replaces the merchandising rules valid now (a preview's). ``log=False`` leaves the list out
    of the recommendation log (the dashboard's view of it is not an impression).
    """
    serving = serving_engine()
    history, now = _history(serving, customer_recent_events(customer=customer))
    items = _recommend(
        serving, history, now=now, k=k, category=category, exclude=exclude, context=context,
        rules=rules,
    )  # fmt: skip
    return _logged(kind=RecommendationKind.CUSTOMER, serving=serving, items=items,
                   customer=customer, log=log)  # fmt: skip


def session_recommendations(
    *,
    events: Sequence[SessionEvent],
    k: int,
    category: str | None = None,
    exclude: Collection[int] = (),
    rules: RuleSet | None = None,
    log: bool = True,
) -> Recommendations:
    """Recommendations for an anonymous session from the products it touched (newest last or
    with times); those products steer the session source and are never returned. ``rules``
    and ``log`` as for customer lists."""
    serving = serving_engine()
    rows = [(e.product.pk, e.event_type, e.occurred_at or _fit_time(serving), "") for e in events]
    history, now = _history(serving, rows)
    context = list(dict.fromkeys(e.product.pk for e in events))
    items = _recommend(
        serving, history, now=now, k=k, category=category, exclude=exclude, context=context,
        rules=rules, surface=RecommendationKind.SESSION,
    )  # fmt: skip
    return _logged(kind=RecommendationKind.SESSION, serving=serving, items=items, log=log)


def _fit_time(serving: ServingEngine) -> datetime:
    return datetime.fromtimestamp(serving.fitted_at, tz=timezone.get_current_timezone())


def _product_list(
    *,
    surface: RecommendationKind,
    ranked_for: Callable[[int], list[RankedItem]],
    k: int,
    blocked: Collection[int] = (),
    category: str | None = None,
    rules: RuleSet | None = None,
) -> list[RecommendedProduct]:
    """A product-to-product or trending list with the merchandising rules of ``surface`` (those
    valid now, or of ``rules`` when given).

    ``ranked_for(n)`` gives the list's best ``n`` candidates, best first. With rules, a deeper
    head is asked for (as for customer lists) so a boost can lift a product from below the
    first k; boosts, buries and filters re-score it (a head that filters leave short of k is
    asked for again, four times deeper), pins and promotions place products in the first k.
    ``blocked`` products (the product the list is about) are never inserted.
    """
    ruleset = merchandising_rules_serving(surface=surface) if rules is None else rules.on(surface)
    depth = max(5 * k, 50) if ruleset else k + _OVERFETCH
    for _ in range(_MAX_DEEPENING):
        fetched = ranked_for(depth)
        head = fetched
        if ruleset.score_rules:
            head = sorted(ruleset.score_hook(fetched), key=lambda item: -item.score)
        # A filter that removed most of the head: look deeper rather than list fewer than k.
        if len(head) >= k or len(fetched) < depth:
            break
        depth *= 4
    if ruleset.positional:
        # Placing happens within k, so products deactivated since the fit go first.
        active = set(
            Product.objects.filter(
                pk__in=[item.product_id for item in head], is_active=True
            ).values_list("pk", flat=True)
        )
        head = [item for item in head if item.product_id in active]
        pool = {item.product_id: item for item in head}
        stop = {*blocked, *ruleset.score_hook.removed}
        stop |= _outside_category(ruleset, category, known=pool, blocked=stop)
        head = apply_positional(head[:k], ruleset.positional, k=k, pool=pool, blocked=stop)
    return _active_products(head, k=k)


def similar_products(
    *,
    product: Product,
    k: int,
    mode: SimilarMode = "semantic",
    log: bool = True,
    rules: RuleSet | None = None,
) -> Recommendations:
    """Products like ``product``: ``semantic`` by meaning (the vector index, no engine needed),
    ``behavioural`` by who bought both, ``hybrid`` both. Never the product itself. The
    merchandising rules for similar lists apply; ``log`` and ``rules`` as for customer lists."""
    if mode == "semantic":

        def nearest(n: int) -> list[RankedItem]:
            return [
                RankedItem(
                    index=-1,
                    product_id=other.pk,
                    score=score,
                    sources=("semantic",),
                    components={"semantic": score},
                    reasons=(f"similar to {product.title}",),
                )
                for other, score in product_similar(product=product, k=n)
            ]

        items = _product_list(
            surface=RecommendationKind.SIMILAR, ranked_for=nearest, k=k, blocked={product.pk},
            rules=rules,
        )  # fmt: skip
        try:
            serving: ServingEngine | None = serving_engine()
        except EngineNotReady:
            serving = None
        return _logged(kind=RecommendationKind.SIMILAR, serving=serving, items=items, log=log)
    serving = serving_engine()
    if _knows(serving.engine, product.pk):
        engine, ann = serving.engine, serving_ann(serving)
        items = _product_list(
            surface=RecommendationKind.SIMILAR,
            ranked_for=lambda n: engine.similar(product.pk, k=n, mode=mode, ann=ann),
            k=k,
            blocked={product.pk},
            rules=rules,
        )
    elif mode == "hybrid":
        # A product newer than the fit has no behaviour yet: its meaning is all there is.
        return similar_products(product=product, k=k, mode="semantic", log=log, rules=rules)
    else:
        items = []
    return _logged(kind=RecommendationKind.SIMILAR, serving=serving, items=items, log=log)


def bought_together(
    *, product: Product, k: int, rules: RuleSet | None = None, log: bool = True
) -> Recommendations:
    """Products that share baskets with ``product``, most often first, with the merchandising
    rules for bought-together lists (``rules`` and ``log`` as for customer lists)."""
    serving = serving_engine()
    items: list[RecommendedProduct] = []
    if _knows(serving.engine, product.pk):
        engine = serving.engine
        items = _product_list(
            surface=RecommendationKind.BOUGHT_TOGETHER,
            ranked_for=lambda n: engine.bought_together(product.pk, k=n),
            k=k,
            blocked={product.pk},
            rules=rules,
        )
    return _logged(kind=RecommendationKind.BOUGHT_TOGETHER, serving=serving, items=items, log=log)


def trending_products(
    *, k: int, category: str | None = None, rules: RuleSet | None = None, log: bool = True
) -> Recommendations:
    """Trending products as of the last fit, then popular ones, optionally in one category,
    with the merchandising rules for trending lists (``rules`` and ``log`` as for customer
    lists)."""
    serving = serving_engine()
    engine = serving.engine
    items = _product_list(
        surface=RecommendationKind.TRENDING,
        ranked_for=lambda n: engine.trending(k=n, category=category or None),
        k=k,
        category=category or None,
        rules=rules,
    )
    return _logged(kind=RecommendationKind.TRENDING, serving=serving, items=items, log=log)
