"""Offline evaluation: load the catalogue and events into an :class:`EngineData`, run protocols.

The one place the evaluation turns database rows into arrays. It works on whatever is imported
(any dataset in the interchange format, or the Online Retail importer's output).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings

from recommender.evaluation.blend_search import AutotuneSpec
from recommender.evaluation.cold_tuning import tune_cold_collaborative, tune_exposure
from recommender.evaluation.protocols import Report, evaluate_cold_start, evaluate_leave_last_out
from recommender.ml.engine import EngineConfig, EngineData
from recommender.ml.interactions import interactions_from_columns
from recommender.selectors.training import catalogue_columns, embedding_matrix, event_columns

from .budget import fit_plan
from .embeddings import get_embedder, product_embeddings_refresh
from .networks import relationship_graph

logger = logging.getLogger(__name__)


def engine_data_load(
    *, embed_missing: bool = True, progress: Callable[[float], None] | None = None
) -> EngineData:
    """Every product (with its vector of the configured model, if any) and every product event,
    read in chunks into numpy columns (:mod:`recommender.selectors.training`).

    With ``embed_missing`` the products without a current vector are embedded first. Search
    events without a product are left out (the offline protocols rank products). ``progress``
    receives fractions from 0 to 1 while the events stream in.
    """
    embedder = get_embedder()
    if embed_missing:
        product_embeddings_refresh(full=True, embedder=embedder)
    catalogue = catalogue_columns()
    vectors, has_vector = embedding_matrix(
        ids=catalogue.ids, model_name=embedder.model_name, dimension=embedder.dimension
    )
    events = event_columns(progress=progress)
    interactions = interactions_from_columns(
        customer=events.customer,
        product=events.product,
        code=events.code,
        timestamp=events.timestamp,
        quantity=events.quantity,
        basket=events.basket,
        event_types=events.event_types,
        catalogue_ids=catalogue.ids,
    )
    del events
    return EngineData(
        item_ids=catalogue.ids,
        item_vectors=vectors,
        has_vector=has_vector,
        item_titles=catalogue.titles,
        item_categories=catalogue.categories,
        item_created_at=catalogue.created_at,
        item_active=catalogue.active,
        interactions=interactions,
    )


def fit_options(data: EngineData, config: EngineConfig) -> dict[str, Any]:
    """What every offline fit of ``data`` is given, as the serving fit is: EASE where the plan
    of :func:`recommender.services.budget.fit_plan` allows it, the fit threads."""
    plan = fit_plan(
        items=len(data.item_ids),
        events=len(data.interactions),
        dimension=int(data.item_vectors.shape[1]),
        neighbours=config.knn_neighbours,
    )
    return {"ease_max_items": plan.ease_max_items, "threads": settings.RECSITE_FIT_THREADS}


def evaluation_run(
    *,
    protocol: str,
    ks: Sequence[int],
    cold_start: bool = False,
    seed: int = 0,
    tune: bool = False,
    config: EngineConfig | None = None,
    embed_missing: bool = True,
    log: Callable[[str], None] = lambda _: None,
    tune_social: bool = False,
    autotune: bool = False,
    locked: Sequence[str] = (),
    sequential: bool = True,
) -> list[Report]:
    """Run the leave-last-out protocol (and the cold-start one) on the imported data. With
    ``autotune``, each protocol runs ``train``'s automatic tuning on its own training split
    (``RECSITE_AUTOTUNE_*`` settings, ``locked`` settings left alone): ``hybrid`` is what it
    would serve, ``hybrid_defaults`` is ``config`` as given. With relationships stored, the
    social source's models and segments are reported too (``tune_social``: its weight and
    settings chosen on validation, after the automatic tuning). With ``sequential`` (and
    ``RECSITE_SEQUENTIAL`` not off) the sequential model is trained on each protocol's training
    data and reported alone and inside the served hybrid (``hybrid_sequential``)."""
    from .sequential import sequential_config, sequential_enabled  # It builds on this module.

    seq_config = sequential_config() if sequential and sequential_enabled() else None
    if protocol != "leave-last-out":
        raise ValueError(f"protocol: expected 'leave-last-out', got {protocol!r}")
    config = config or EngineConfig()
    data = engine_data_load(embed_missing=embed_missing)
    log(
        f"loaded {len(data.item_ids)} products ({int(data.has_vector.sum())} with vectors), "
        f"{len(data.interactions)} events of {data.interactions.n_users} customers"
    )
    options = fit_options(data, config)
    graph = relationship_graph()
    if graph is not None:
        log(f"relationships: {len(graph)} edges")
    spec = None
    if autotune and settings.RECSITE_AUTOTUNE_SECONDS > 0:
        spec = AutotuneSpec(
            budget_seconds=settings.RECSITE_AUTOTUNE_SECONDS,
            min_gain=settings.RECSITE_AUTOTUNE_MIN_GAIN,
            locked=tuple(locked),
            rerank=settings.RECSITE_RERANKER,
            cost_tolerance=settings.RECSITE_AUTOTUNE_COST_TOLERANCE,
        )
    reports = [
        evaluate_leave_last_out(
            data,
            config=config,
            ks=ks,
            tune=tune,
            seed=seed,
            log=log,
            fit_options=options,
            graph=graph,
            tune_social=tune_social,
            autotune=spec,
            sequential=seq_config,
        )
    ]
    if cold_start:
        reports.append(
            evaluate_cold_start(
                data,
                config=config,
                ks=ks,
                seed=seed,
                log=log,
                fit_options=options,
                autotune=spec,
                sequential=seq_config,
            )
        )
    return reports


def cold_collaborative_tune(
    *,
    config: EngineConfig | None = None,
    seed: int = 0,
    embed_missing: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[float, list[dict[str, Any]]]:
    """Choose ``cold_collaborative`` on validation splits of the imported data (see
    :mod:`recommender.evaluation.cold_tuning`): the chosen share and one row per share."""
    data = engine_data_load(embed_missing=embed_missing)
    return tune_cold_collaborative(data, config=config or EngineConfig(), seed=seed, log=log)


def exposure_tune(
    *,
    config: EngineConfig | None = None,
    seed: int = 0,
    embed_missing: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[tuple[int, float], list[dict[str, Any]], dict[str, Any]]:
    """Choose the exposure slots on validation splits of the imported data (see
    :mod:`recommender.evaluation.cold_tuning`): the chosen ``(exposure_slots,
    exposure_min_score)``, one row per grid point and the content model's reference."""
    data = engine_data_load(embed_missing=embed_missing)
    config = config or EngineConfig()
    return tune_exposure(
        data, config=config, seed=seed, log=log, fit_options=fit_options(data, config)
    )
