"""Lists replayed as of a past moment, for the experiments app's replay simulator
(docs/experiments.md, "Replay"): the engine fitted on the events before a date, in memory, and
what a replayed request carries.

The fit is the serving fit (``engine_build``'s configuration, collaborative model choice, cold
look-alikes, and the learned reranker when the serving engine has one) on a cut of the events,
done the offline evaluation's way: every product and event loaded
(:func:`recommender.services.evaluation.engine_data_load`), the events cut by a mask
(``Interactions.subset``, as the evaluation's training splits), the fit given
:func:`recommender.services.evaluation.fit_options`. Nothing is published: the shop's serving
build, its configuration and its vector index stay exactly as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings

from recommender.evaluation.rankers import _train_data
from recommender.ml.engine import HybridEngine

from ..budget import fit_plan
from ..embeddings import get_embedder
from ..evaluation import engine_data_load, fit_options
from ..index import serving_index_search
from .fitting import _reranker
from .serving import EngineNotReady, ServingEngine, serving_engine
from .variants import ServedVariant
from .versions import engine_config_active


class NothingToLearn(ValueError):
    """No event happened before the replay's start: the engine would have nothing to learn."""


@dataclass(frozen=True, slots=True)
class EngineBefore:
    """The engine fitted on the events before ``before``, and what it learnt from."""

    serving: ServingEngine
    fitted: HybridEngine
    before: datetime
    events: int
    customers: int
    newest_event: float
    seconds: float
    collaborative: str
    reranker: dict[str, Any] | None


def engine_fit_before(
    *,
    before: datetime,
    rerank: bool | None = None,
    progress: Callable[[float], None] | None = None,
) -> EngineBefore:
    """The engine the shop would have served at ``before``: fitted with the active configuration
    on the events that happened before it (see the module's notes), in memory.

    ``rerank``: learn the reranker on the cut too (kept only where it wins on the cut's own
    validation customers, as ``train`` does). None: as the shop serves now, when its serving
    engine has one (before any fit, when ``RECSITE_RERANKER`` is on): a replay of a shop whose
    fit kept the linear blend does not spend a second fit learning one.

    Raises :class:`NothingToLearn` when no event is that old, and
    :class:`~recommender.services.budget.MemoryBudgetExceeded` when the fit would not fit the
    memory budget (checked from the counts before fitting).
    """
    report = progress or (lambda _: None)
    started = time.perf_counter()
    version, config = engine_config_active()
    embedder = get_embedder()
    data = engine_data_load(embed_missing=False, progress=lambda f: report(0.3 * f))
    mask = data.interactions.timestamp < before.timestamp()
    if not mask.any():
        raise NothingToLearn(
            f"no event happened before {before.isoformat()}: the engine would have nothing to "
            "learn from"
        )
    cut = _train_data(data, data.interactions.subset(mask))
    del data
    options = fit_options(cut, config)
    fit_plan(
        items=len(cut.item_ids),
        events=len(cut.interactions),
        dimension=int(cut.item_vectors.shape[1]),
        neighbours=config.knn_neighbours,
    ).estimate.check()
    newest = float(cut.interactions.timestamp.max())
    engine = HybridEngine(config).fit(
        cut,
        now=newest,
        ann=serving_index_search(embedder.model_name),
        progress=lambda f: report(0.3 + 0.6 * f),
        **options,
    )
    if rerank is None:
        rerank = _serving_reranks()
    reranker_note = None
    if rerank:
        engine.reranker, reranker_note = _reranker(
            cut, config, options["ease_max_items"], embedder.model_name
        )
    report(1.0)
    serving = ServingEngine(
        build_id=0,  # Never published: a replayed list's log row names no build.
        path="",
        model_name=embedder.model_name,
        config_version=version,
        engine=engine,
        fitted_at=newest,
        fit_config_version=version,
        pending_fit_fields=(),
    )
    return EngineBefore(
        serving=serving,
        fitted=engine,
        before=before,
        events=len(cut.interactions),
        customers=len(np.unique(cut.interactions.user_idx)),
        newest_event=newest,
        seconds=round(time.perf_counter() - started, 2),
        collaborative=engine.collaborative_note,
        reranker=reranker_note,
    )


def _serving_reranks() -> bool:
    try:
        return serving_engine().engine.reranker is not None
    except EngineNotReady:
        return bool(settings.RECSITE_RERANKER)


@dataclass(frozen=True, slots=True)
class Replayed:
    """A customer list asked for as of ``at``, a past visit's moment, by the replay simulator.

    ``serving``: the engine it serves (:func:`engine_fit_before`'s, with the variant's
    configuration applied: :func:`~.serving.serving_with_variant`); ``variant``: the variant
    the replayed experiment's assignment gives the visitor. The customer's history is read as
    of ``at`` (only events before it), and the log row is dated ``at`` and marked ``replayed``.
    """

    at: datetime
    serving: ServingEngine
    variant: ServedVariant
