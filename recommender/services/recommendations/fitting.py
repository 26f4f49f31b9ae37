"""Fitting and publishing engine builds: fit the engine on every product and event with the
active configuration, save it atomically under a name of its own and only then mark its
:class:`EngineBuild` READY (like the vector index); prune old builds' files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from jobs.choices import BuildStatus
from jobs.models import Job
from jobs.services.artifact_store import unique_name
from jobs.services.artifacts import artifact_publishing, build_mark_failed, builds_prune
from recommender.evaluation.reranker_training import learn_reranker
from recommender.ml.engine import EngineConfig, EngineData, HybridEngine
from recommender.ml.engine.data import customer_sample
from recommender.ml.engine.reranker import Reranker
from recommender.models import EngineBuild, Product
from recommender.selectors.training import product_event_count

from ..budget import PeakMemory, fit_plan, memory_budget
from ..embeddings import get_embedder
from ..evaluation import engine_data_load
from ..index import serving_index_search, validation_search
from ..serving_mode import serving_caches_release
from .versions import engine_config_active

logger = logging.getLogger(__name__)

# The artifact store's folder (or key prefix) of engine builds.
ENGINE_KIND = "engine"


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
    # The index too: the events are read without it beside them (1.9 GiB at a million
    # products); the reranker's validation and the look-alikes load it again, and the fit lets
    # it go before the collaborative models.
    serving_caches_release()
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
            # Before the fit, not after: the reranker's validation engine is gone by the time
            # the engine is fitted, so the peak is the larger of the two, not their sum.
            reranker, reranker_note = _reranker(data, config, plan.ease_max_items, model_name)
            report(0.4)
            engine = HybridEngine(config).fit(
                data,
                now=now,
                ease_max_items=plan.ease_max_items,
                threads=settings.RECSITE_FIT_THREADS,
                ann=serving_index_search(model_name),
                progress=lambda f: report(0.4 + 0.5 * f),
                # The index (about 1.9 GiB at a million products) is not held beside the
                # collaborative models, which set the fit's peak; serving loads it again.
                ann_done=serving_caches_release,
            )
            engine.reranker = reranker
            report(0.95)
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
    build.reranker = reranker_note
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


def _reranker(
    data: EngineData, config: EngineConfig, ease_max_items: int, model_name: str
) -> tuple[Reranker | None, dict[str, Any] | None]:
    """The learned reranker when it beats the linear blend on the shop's validation split
    (``RECSITE_RERANKER``; on a customer sample as the automatic tuning), and what was measured."""
    if not settings.RECSITE_RERANKER:
        return None, None
    return learn_reranker(
        customer_sample(data, settings.RECSITE_AUTOTUNE_MAX_CUSTOMERS),
        config=config,
        min_gain=settings.RECSITE_AUTOTUNE_MIN_GAIN,
        fit_options={"ease_max_items": ease_max_items, "threads": settings.RECSITE_FIT_THREADS},
        search=validation_search(items=len(data.item_ids), model_name=model_name),
    )


def engine_builds_prune(*, keep: int | None = None) -> int:
    """Remove the files of READY engine builds beyond the newest ``keep``; returns how many."""
    return builds_prune(model=EngineBuild, kind=ENGINE_KIND, keep=keep)
