"""Automatic tuning in every fit: search the blend on the shop's own validation split and
activate a new configuration version only when it beats the active one there.

The train job (``manage.py train``, the dashboard's button, the nightly refresh) runs this step
before it fits: each customer's last product is held out, an engine is fitted on what came
before, and :func:`recommender.evaluation.blend_search.search_blend` searches the source
weights, half-life and number of interests within ``RECSITE_AUTOTUNE_SECONDS``. The best point
becomes a new version (note "tuned automatically, +x% NDCG@10 on validation", the search in its
``tuning`` field) when it beats the active version by ``RECSITE_AUTOTUNE_MIN_GAIN`` on the same
customers; otherwise the active version stays and the job's result says why. Settings the
active version lists in ``locked`` are never changed, and a version a merchandiser saved while
the search ran is never replaced. docs/tuning.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from recommender.evaluation.blend_search import (
    SEARCHED,
    TooLittleData,
    cheaper_to_serve,
    search_blend,
    search_verdict,
)
from recommender.ml.engine import EngineConfig, EngineData
from recommender.ml.engine.data import customer_sample
from recommender.models import Product
from recommender.selectors.training import product_event_count

from .budget import fit_plan
from .embeddings import get_embedder
from .evaluation import engine_data_load, fit_options
from .index import validation_search
from .recommendations import ConfigChanged, recommendation_config_active, recommendation_config_save
from .recommendations.serving import serving_engine_recheck

logger = logging.getLogger(__name__)


@dataclass
class AutotuneOutcome:
    """What one automatic tuning did: the version it activated (None: the active one stays)
    and why, with the search's figures."""

    active_version: int
    activated_version: int | None
    reason: str
    search: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "autotune": "activated" if self.activated_version else "kept",
            "config_version": self.activated_version or self.active_version,
            "reason": self.reason,
            **({"search": self.search} if self.search else {}),
        }


def config_autotune(
    *,
    budget_seconds: float | None = None,
    progress: Callable[[float], None] | None = None,
    data: EngineData | None = None,
) -> AutotuneOutcome:
    """Search the blend on the validation split and activate the best point if it wins."""
    report = progress or (lambda _: None)
    budget = settings.RECSITE_AUTOTUNE_SECONDS if budget_seconds is None else budget_seconds
    active = recommendation_config_active()
    config = EngineConfig.from_dict(active.config)
    locked = sorted(set(active.locked) & set(SEARCHED))
    if budget <= 0:
        return _kept(active.version, "automatic tuning is off (RECSITE_AUTOTUNE_SECONDS=0)")
    if len(locked) == len(SEARCHED):
        return _kept(active.version, "every tuned setting is locked on the tuning page")
    if data is None:
        fit_plan(
            items=Product.objects.count(),
            events=product_event_count(),
            dimension=get_embedder().dimension,
            neighbours=config.knn_neighbours,
        ).estimate.check()
        data = engine_data_load(embed_missing=False, progress=lambda f: report(0.2 * f))
    data = customer_sample(data, settings.RECSITE_AUTOTUNE_MAX_CUSTOMERS)
    try:
        found = search_blend(
            data,
            config=config,
            locked=locked,
            budget_seconds=budget,
            progress=lambda f: report(0.2 + 0.8 * f),
            log=logger.info,
            fit_options=fit_options(data, config),
            cost_tolerance=settings.RECSITE_AUTOTUNE_COST_TOLERANCE,
            search=validation_search(
                items=len(data.item_ids), model_name=get_embedder().model_name
            ),
        )
    except TooLittleData as exc:
        return _kept(active.version, f"too little behaviour to tune on: {exc}")
    search = {**found.as_dict(), "locked": locked, "replaced_version": active.version}
    verdict = search_verdict(found, active=config, min_gain=settings.RECSITE_AUTOTUNE_MIN_GAIN)
    if verdict is not None:
        reason = f"kept version {active.version}: {verdict}"
        return AutotuneOutcome(active.version, None, reason, search)
    cheaper = cheaper_to_serve(found, config)
    note = f"tuned automatically, {_percent(found.gain)} NDCG@10 on validation"
    if cheaper:
        note += ", cheaper to serve"
    try:
        saved = recommendation_config_save(
            config=found.config, note=note, tuning=search, replaces=active.version
        )
    except ConfigChanged as exc:
        return AutotuneOutcome(active.version, None, f"not activated: {exc}", search)
    serving_engine_recheck()
    reason = (
        f"activated version {saved.version}: the best point found scored "
        f"{found.best_ndcg:.4f} NDCG@10 on validation against version {active.version}'s "
        f"{found.active_ndcg:.4f} ({found.users} customers)"
        + (", and is cheaper to serve" if cheaper else "")
    )
    return AutotuneOutcome(active.version, saved.version, reason, search)


def _kept(version: int, reason: str) -> AutotuneOutcome:
    return AutotuneOutcome(version, None, reason)


def _percent(gain: float) -> str:
    return "+∞%" if gain == float("inf") else f"{gain * 100:+.1f}%"
