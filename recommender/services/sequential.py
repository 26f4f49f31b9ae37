"""The sequential model's builds: training (a step of every train job, on the ``gpu`` queue),
the validation gate that decides whether it serves, and loading it in serving processes.

A build follows the engine's pattern (:mod:`jobs.services.artifacts`): a
:class:`SequentialBuild` row created BUILDING, the model saved atomically under a name of its
own in the artifact store, the row marked READY only then, so a training killed or failed
midway leaves the serving model as it was. The model is trained on the shop's validation split
(each eligible customer's last product held out, early stopping on it), then the gate fits the
engine on the same split (on a customer sample only where the whole shop would exceed the
memory budget beside what the step holds) and scores the held-out products with and without the
``sequential`` source: the build is ``enabled`` (served) only when the source raised the
hybrid's NDCG@10 there. A shop too small to learn an order from gets no build and a message
saying why.

The model is trained within ``RECSITE_SEQUENTIAL_MAX_SECONDS`` (the best epoch within the budget
is kept), so a train job on a CPU-only machine grows by minutes, not tens of minutes.

Web processes serve the newest READY build for the engine's vectors when it is enabled: the
serving engine's one query reads it with the engine build, and :func:`sequential_serving_reload`
maps it read-only (:mod:`recommender.services.recommendations.serving`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from jobs.choices import BuildStatus
from jobs.models import Job
from jobs.services.artifact_store import ArtifactStoreError, unique_name
from jobs.services.artifacts import (
    artifact_local,
    artifact_publishing,
    build_mark_failed,
    builds_prune,
)
from recommender.evaluation.sequential import gate as sequential_gate
from recommender.ml.engine import EngineConfig, EngineData
from recommender.ml.engine.data import customer_sample
from recommender.ml.sequential import (
    NotEnoughData,
    SequentialConfig,
    SequentialModel,
    fit_sequential,
)
from recommender.ml.sequential.training import check_trainable
from recommender.models import SequentialBuild

from .budget import fit_customers, fit_plan
from .embeddings import get_embedder
from .evaluation import engine_data_load, fit_options
from .index import validation_search
from .serving_mode import serving_caches_release

logger = logging.getLogger(__name__)

SEQUENTIAL_KIND = "sequential"


@dataclass(frozen=True)
class SequentialOutcome:
    """What a train job's sequential step did: a build, or why there is none."""

    build: SequentialBuild | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        build = self.build
        if build is None:
            return {"sequential_build": None, "message": self.message}
        return {
            "sequential_build": build.pk,
            "enabled": build.enabled,
            "device": build.device,
            "seconds": build.fit_seconds,
            "validation": {k: v for k, v in build.validation.items() if k != "epochs"},
            "message": self.message,
        }


def sequential_config() -> SequentialConfig:
    """The model's settings: the defaults, with ``RECSITE_SEQUENTIAL_MAX_EPOCHS``,
    ``RECSITE_SEQUENTIAL_MAX_SECONDS`` (the training time budget) and
    ``RECSITE_SEQUENTIAL_THREADS``."""
    return SequentialConfig(
        max_epochs=settings.RECSITE_SEQUENTIAL_MAX_EPOCHS,
        max_seconds=settings.RECSITE_SEQUENTIAL_MAX_SECONDS,
        threads=settings.RECSITE_SEQUENTIAL_THREADS,
    )


def sequential_enabled() -> bool:
    value = settings.RECSITE_SEQUENTIAL
    if value not in ("auto", "off"):
        raise ValueError(f"RECSITE_SEQUENTIAL: expected 'auto' or 'off', got {value!r}")
    return value == "auto"


def sequential_build(
    *,
    job: Job | None = None,
    progress: Callable[[float], None] | None = None,
    data: EngineData | None = None,
) -> SequentialOutcome:
    """Train the sequential model on every product and event, gate it on validation, publish.

    Returns an outcome without a build when ``RECSITE_SEQUENTIAL`` is off or the shop is too
    small (the message says which). A failure marks the build FAILED and raises; the build that
    served before keeps serving.
    """
    report = progress or (lambda _: None)
    if not sequential_enabled():
        return SequentialOutcome(None, "RECSITE_SEQUENTIAL is off: no sequential model")
    serving_caches_release()
    embedder = get_embedder()
    if data is None:
        data = engine_data_load(embed_missing=False, progress=lambda f: report(0.05 * f))
    try:
        check_trainable(data.interactions)
    except NotEnoughData as exc:
        logger.info("No sequential model: %s", exc)
        return SequentialOutcome(None, f"no sequential model: {exc}")
    _, config = _active_config()
    build = SequentialBuild.objects.create(
        status=BuildStatus.BUILDING, model_name=embedder.model_name, job=job
    )
    started = time.perf_counter()
    try:
        model, fit = fit_sequential(
            data.interactions,
            vectors=data.item_vectors,
            config=sequential_config(),
            device=settings.RECSITE_SEQUENTIAL_DEVICE,
            progress=lambda f: report(0.05 + 0.75 * f),
        )
        gate = sequential_gate(
            _gate_shop(data, config),
            model,
            config=config,
            fit_options=fit_options(data, config),
            search=validation_search(items=len(data.item_ids), model_name=embedder.model_name),
        )
        report(0.95)
        model.meta["validation"] = gate
        name = unique_name("sequential", build.pk, ".sequential")
        with artifact_publishing(kind=SEQUENTIAL_KIND, name=name) as publication:
            model.save(publication.main)
    except BaseException as exc:  # An interrupted command too: nothing half-published.
        build_mark_failed(model=SequentialBuild, pk=build.pk, exc=exc)
        raise
    enabled = gate["hybrid_with_ndcg@10"] > gate["hybrid_without_ndcg@10"]
    verdict = "raises" if enabled else "does not raise"
    note = (
        f"the sequential source {verdict} the hybrid's validation NDCG@10 "
        f"({gate['hybrid_without_ndcg@10']:.4f} without, {gate['hybrid_with_ndcg@10']:.4f} with "
        f"weight {gate['weight']:g}): " + ("served" if enabled else "not served")
    )
    if enabled and config.source_weights.get("sequential", 0.0) <= 0:
        # A configuration saved before the source existed (or set to 0 on the tuning page).
        note += ", but the active configuration gives the sequential source weight 0 (tuning page)"
    build.status = BuildStatus.READY
    build.path = publication.location  # The commit point.
    build.item_count = len(data.item_ids)
    build.customer_count = fit.customers
    build.device = fit.device
    build.fit_seconds = round(time.perf_counter() - started, 3)
    build.validation = {
        **gate,
        "sequential_ndcg@10": round(fit.best_ndcg, 5),
        **{
            k: v
            for k, v in fit.to_dict().items()
            if k in ("epochs", "best_epoch", "stopped", "sequences_per_second")
        },
    }
    build.enabled = enabled
    build.note = note[:500]
    build.finished_at = timezone.now()
    build.save()
    builds_prune(model=SequentialBuild, kind=SEQUENTIAL_KIND)
    report(1.0)
    logger.info("Sequential build %s: %s", build.pk, note)
    return SequentialOutcome(build, note)


def _gate_shop(data: EngineData, config: EngineConfig) -> EngineData:
    """The shop the gate fits its validation engine on: all of it when that fit's plan is
    within the memory budget beside what this step already holds (the loaded shop, the trained
    model, the serving index), else the largest seeded customer sample that is. A sample
    weakens the engine the source is compared against, so it is the exception, logged."""
    inter = data.interactions
    customers = len(np.unique(inter.user_idx))
    plan = fit_plan(
        items=len(data.item_ids),
        events=len(inter),
        dimension=int(data.item_vectors.shape[1]),
        neighbours=config.knn_neighbours,
    )
    fitting = fit_customers(plan, customers=customers)
    if fitting >= customers:
        return data
    logger.warning(
        "The sequential gate fits on %d of %d customers: the whole shop would exceed "
        "RECSITE_FIT_MEMORY_BUDGET beside what the step holds",
        fitting,
        customers,
    )
    return customer_sample(data, fitting)


def _active_config() -> tuple[int, EngineConfig]:
    # Imported here: the recommendations service imports this module to serve the model.
    from .recommendations import engine_config_active

    return engine_config_active()


# Serving ------------------------------------------------------------------------------------

# What a serving process holds: the build's location and the mapped model.
HeldSequential = tuple[str, SequentialModel]


def sequential_serving_reload(
    *, location: str | None, held: HeldSequential | None
) -> HeldSequential | None:
    """The model of the sequential build at ``location`` (the newest enabled READY build for the
    engine's vectors, which the serving engine's one query reads with its build), mapped
    read-only: ``held`` again when it is that build, None when there is none. A build that
    cannot be loaded leaves ``held`` serving (logged)."""
    if location is None:
        return None
    if held is not None and held[0] == location:
        return held
    try:
        path = artifact_local(model=SequentialBuild, kind=SEQUENTIAL_KIND, location=location)
        model = SequentialModel.load(path)
    except (ArtifactStoreError, OSError, ValueError):
        logger.exception("Cannot load the sequential build at %s", location)
        return held
    logger.info("Loaded the sequential build at %s", location)
    return location, model


def sequential_builds_prune(*, keep: int | None = None) -> int:
    return builds_prune(model=SequentialBuild, kind=SEQUENTIAL_KIND, keep=keep)
