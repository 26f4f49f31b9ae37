"""The evaluation protocols, leave-last-out and cold start, run over every ranker, and their report.

Leave-last-out (docs/evaluation.md): every customer with at least ``min_items`` distinct
products holds out the product they touched last (the product whose first event is latest; ties
in time, the lines of one basket, are broken by a seeded hash of customer and product, never by
row order: ``splits``). That product's events and every later event of the customer
are removed from training; the customer's remaining events are the history. Each model ranks
every product with the history masked (all products the customer touched in training, of any
event type, are never ranked), and the held-out product is looked for in the top of the list.

Validation: the same step applied twice gives the second-to-last product, with training data
that ends before it. Blend weights are tuned on that split only; test items are never seen.

Cold start: a seeded 10% of the products with events lose all their events in training. For each
customer who touched one of them, the first such product is the target and the customer's
other (warm) events up to that moment are the history. Only a content path can find the target.

Metrics: Recall@K, NDCG@K, MRR (ranks beyond ``depth`` = 100 count as 0: at most 0.01 each),
catalogue coverage@K (share of active products in any top-K list) and intra-list diversity@K
(1 - mean pairwise cosine of the product vectors of a list, over products that have vectors).

The modules: ``splits`` (the held-out products), ``rankers`` (baselines, the hybrid as a ranker,
scoring), ``blend_tuning`` (the validation grid search); this one runs the two protocols and
holds their report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from recommender.ml.engine import EngineConfig, EngineData, HybridEngine
from recommender.ml.sequential import SequentialConfig

from .baseline_tuning import baselines_on_validation
from .blend_search import AutotuneSpec, TooLittleData, search_blend, search_verdict
from .blend_tuning import tune_blend
from .rankers import (
    HybridRanker,
    ModelResult,
    Ranker,
    _Context,
    _context,
    _train_data,
    baseline_rankers,
    hybrid_ranker,
    masked_config,
    score_rankers,
)
from .reranker_training import learn_reranker
from .social import (
    SOCIAL_SETTINGS_GRID,
    Networks,
    SocialGraph,
    history_cut,
    segment_metrics,
    segment_users,
    social_only,
    tune_social,
    with_social_weight,
)
from .splits import cold_start_split, leave_last_out


@dataclass
class Report:
    protocol: str
    ks: tuple[int, ...]
    users: int
    items: int
    events: int
    results: list[ModelResult] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    # With relationships: the metrics per customer segment (recommender.evaluation.social).
    segments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "ks": list(self.ks),
            "users": self.users,
            "items": self.items,
            "events": self.events,
            "models": {
                r.name: {**r.metrics, "users": r.users, "seconds": r.seconds} for r in self.results
            },
            "config": self.config,
            "notes": self.notes,
            **({"segments": self.segments} if self.segments else {}),
        }


def evaluate_leave_last_out(
    data: EngineData,
    *,
    config: EngineConfig,
    ks: Sequence[int] = (10, 20),
    min_items: int = 3,
    tune: bool = False,
    max_tune_users: int = 3000,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
    graph: SocialGraph | None = None,
    tune_social: bool = False,
    autotune: AutotuneSpec | None = None,
    sequential: SequentialConfig | None = None,
) -> Report:
    """Leave-last-out for the baselines and the hybrid (``fit_options`` go to every
    :meth:`HybridEngine.fit`: the collaborative model's limit and threads, as the serving fit).

    With relationships (``graph``), ``hybrid`` has the social source (at the configuration's
    weight), and ``hybrid_without_social`` and ``social_only`` are reported beside it, with the
    ``segments`` (:mod:`.social`); ``tune_social`` chooses the social weight and settings on
    the validation split, on top of the automatic tuning's choice, and evaluates ``hybrid``
    with them (the choice is in the notes).

    With ``autotune``, the fit procedure of ``train`` runs on this split's training data only
    (its validation products are the second-to-last ones; the test items are never seen):
    ``hybrid`` is what it would serve, ``hybrid_defaults`` is ``config`` as given.

    With ``sequential``, also the sequential model alone (``sequential``) and the served hybrid
    with it (``hybrid_sequential``), trained on this split's training data
    (:mod:`recommender.evaluation.sequential`); ``hybrid`` stays the hybrid without it.

    The baselines' own settings (EASE's λ, item-kNN's neighbours) are chosen on the same kind of
    validation split (``baseline_tuning``)."""
    options = dict(fit_options or {})
    inter = data.interactions
    split = leave_last_out(inter, min_items=min_items)
    cfg = masked_config(config, inter)
    ctx = _context(data, split.train, cfg)
    report = Report(
        protocol="leave-last-out",
        ks=tuple(ks),
        users=len(split.held_out),
        items=int(np.asarray(data.item_active).sum()),
        events=len(inter),
        config=config.to_dict(),
    )
    log(f"leave-last-out: {len(split.held_out)} customers, {len(inter)} events")
    rankers, report.notes["baselines"] = baselines_on_validation(
        data, ctx, train_mask=split.train, min_items=min_items, seed=seed, log=log
    )
    now = float(ctx.train.timestamp.max())
    networks = Networks(graph, inter, ctx.user_events) if graph is not None and len(graph) else None
    engine = HybridEngine(cfg).fit(_train_data(data, ctx.train), now=now, **options)
    report.notes["collaborative"] = engine.collaborative_note
    rankers["hybrid"] = hybrid_ranker(ctx, engine, networks)
    served_engine = engine
    # What would serve: the automatic tuning's choice (or ``config``), then, with
    # ``tune_social``, the social source's settings chosen on validation on top of it.
    social = None
    if networks is not None and tune_social and graph is not None:
        social = partial(_social_tuned, data, graph=graph, report=report, options=options,
                         min_items=min_items, log=log)  # fmt: skip
    if autotune is not None or social is not None:
        served_engine = _served(data, config, autotune, engine=engine, ctx=ctx, base=split.train,
                                min_items=min_items, seed=seed, log=log, options=options,
                                notes=report.notes, social=social)  # fmt: skip
    if autotune is not None:
        rankers["hybrid_defaults"] = hybrid_ranker(ctx, engine, networks)
    rankers["hybrid"] = hybrid_ranker(ctx, served_engine, networks)
    if networks is not None:
        rankers.update(_social_rankers(ctx, served_engine, networks))
    if sequential is not None:
        _add_sequential(report, rankers, ctx, served_engine, sequential, log=log,
                        fit_options=options)  # fmt: skip
    if tune:
        tuned, table = tune_blend(
            data,
            config=config,
            min_items=min_items,
            max_users=max_tune_users,
            seed=seed,
            log=log,
            fit_options=options,
        )
        report.notes["tuned_config"] = tuned.to_dict()
        report.notes["validation"] = table[:10]
        tuned_engine = HybridEngine(masked_config(tuned, inter)).fit(
            _train_data(data, ctx.train), now=now, **options
        )
        rankers["hybrid_tuned"] = hybrid_ranker(ctx, tuned_engine)
    report.results = score_rankers(ctx, rankers, split.held_out, ks)
    if networks is not None:
        segments = segment_users(split.held_out, networks, ctx.user_events)
        scored = {u for r in report.results for u in r.ranks}
        report.notes["customers_with_relationships"] = len(segments["with_relationships"])
        report.notes["share_with_relationships"] = round(
            len(segments["with_relationships"]) / max(len(scored), 1), 5
        )
        report.segments = segment_metrics({r.name: r.ranks for r in report.results}, segments, ks)
        report.segments["few_events_simulated"] = _few_events_simulated(
            ctx, rankers, split.held_out, segments["with_relationships"], ks
        )
    return report


def _served(
    data: EngineData,
    config: EngineConfig,
    spec: AutotuneSpec | None,
    *,
    engine: HybridEngine,
    ctx: Any,
    base: np.ndarray,
    min_items: int,
    seed: int,
    log: Callable[[str], None],
    options: Mapping[str, Any],
    notes: dict[str, Any],
    social: Callable[[EngineConfig], EngineConfig] | None = None,
) -> HybridEngine:
    """What ``train`` would serve from ``config`` on the training split ``base`` (the events of
    ``ctx.train``): the automatic tuning on its validation split (with ``spec``), then
    ``social``'s choice on top of it (``tune_social``), then the reranker where it wins there
    (with ``spec``). ``engine`` is ``config`` fitted on that split (served as it is when nothing
    changes it); the searches' figures go to ``notes``."""
    inter = data.interactions
    now = float(ctx.train.timestamp.max())
    tuned = None
    if spec is not None:
        tuned = _autotuned(data, config, spec, base=base, min_items=min_items, seed=seed,
                           log=log, options=options, notes=notes)  # fmt: skip
    if social is not None:
        tuned = social(tuned or config)
    served = engine
    if tuned is not None:
        served = HybridEngine(masked_config(tuned, inter)).fit(
            _train_data(data, ctx.train), now=now, **options
        )
    if spec is not None and spec.rerank:
        reranker, notes["reranker"] = learn_reranker(
            data,
            config=tuned or config,
            base=base,
            min_items=min_items,
            min_gain=spec.min_gain,
            seed=seed,
            fit_options=options,
        )
        if reranker is not None:
            served = served.with_config(served.config)  # A copy: the defaults stay linear.
            served.reranker = reranker
    return served


def _few_events_simulated(
    ctx: Any,
    rankers: Mapping[str, Any],
    held: Sequence[Any],
    users: set[int],
    ks: Sequence[int],
) -> dict[str, Any]:
    """The ``few_events_simulated`` segment: the customers with relationships, each history cut
    to its ``FEW_EVENTS`` newest events, ranked by item-kNN and the hybrid with and without the
    social source and by the social source alone (the same fitted engines)."""
    cut = replace(ctx, user_events=history_cut(ctx.user_events, users))
    chosen: dict[str, Any] = {}
    for name in ("item_knn", "hybrid", "hybrid_without_social", "social_only"):
        ranker = rankers.get(name)
        if isinstance(ranker, HybridRanker):
            chosen[name] = hybrid_ranker(cut, ranker.engine, ranker.networks)
        elif ranker is not None:
            chosen[name] = ranker  # A baseline ranks the history it is given.
    results = score_rankers(cut, chosen, [h for h in held if h.user in users], ks)
    segment = {"few_events_simulated": users}
    return segment_metrics({r.name: r.ranks for r in results}, segment, ks)["few_events_simulated"]


def _autotuned(
    data: EngineData,
    config: EngineConfig,
    spec: AutotuneSpec,
    *,
    base: np.ndarray,
    min_items: int,
    seed: int,
    log: Callable[[str], None],
    options: Mapping[str, Any],
    notes: dict[str, Any],
) -> EngineConfig | None:
    """The configuration ``train`` would activate from ``config`` on this training split (None:
    it would keep ``config``), with the search in ``notes["autotune"]``."""
    try:
        found = search_blend(
            data,
            config=config,
            locked=spec.locked,
            budget_seconds=spec.budget_seconds,
            base=base,
            min_items=min_items,
            seed=seed,
            log=log,
            fit_options=options,
            cost_tolerance=spec.cost_tolerance,
        )
    except TooLittleData as exc:
        notes["autotune"] = {"verdict": f"kept: too little behaviour to tune on: {exc}"}
        return None
    verdict = search_verdict(found, active=config, min_gain=spec.min_gain)
    notes["autotune"] = {
        **found.as_dict(),
        "verdict": "tuned" if verdict is None else f"kept: {verdict}",
        "config": found.config.to_dict(),
    }
    return found.config if verdict is None else None


def _social_tuned(
    data: EngineData,
    config: EngineConfig,
    graph: SocialGraph,
    report: Report,
    options: Mapping[str, Any],
    min_items: int,
    log: Callable[[str], None],
) -> EngineConfig:
    """``config`` (the configuration that would serve) with the social source's weight and
    settings chosen on validation (:func:`.social.tune_social`; the choice in the notes)."""
    inter = data.interactions
    tuned, table = tune_social(
        data, config=config, graph=graph,
        engine_for=lambda train: HybridEngine(masked_config(config, inter)).fit(
            train, now=float(train.interactions.timestamp.max()), **options
        ),
        min_items=min_items, log=log,
    )  # fmt: skip
    report.notes["social_validation"] = table
    report.notes["social_weight"] = tuned.source_weights.get("social", 0.0)
    report.notes["social_settings"] = {name: getattr(tuned, name) for name in SOCIAL_SETTINGS_GRID}
    report.notes["social_config"] = tuned.to_dict()
    return tuned


def _social_rankers(ctx: Any, engine: HybridEngine, networks: Networks) -> dict[str, Any]:
    """The served engine with the social weight at 0, and with the social source alone."""
    served = engine.config
    return {
        "hybrid_without_social": hybrid_ranker(
            ctx, engine.with_config(with_social_weight(served, 0.0)), networks
        ),
        "social_only": hybrid_ranker(ctx, engine.with_config(social_only(served)), networks),
    }


def evaluate_cold_start(
    data: EngineData,
    *,
    config: EngineConfig,
    ks: Sequence[int] = (10, 20),
    share: float = 0.1,
    seed: int = 0,
    min_items: int = 3,
    log: Callable[[str], None] = lambda _: None,
    fit_options: Mapping[str, Any] | None = None,
    autotune: AutotuneSpec | None = None,
    sequential: SequentialConfig | None = None,
) -> Report:
    """The cold-start protocol for popularity, content and the hybrid. With ``autotune``, the
    fit procedure of ``train`` runs on this protocol's own training split (the cold products'
    events removed; its validation products are each customer's last one there, so neither the
    cold products nor the targets are seen): ``hybrid`` is what it would serve had those
    products been new, ``hybrid_defaults`` is ``config`` as given."""
    options = dict(fit_options or {})
    inter = data.interactions
    train_mask, held, cold = cold_start_split(inter, share=share, seed=seed)
    cfg = masked_config(config, inter)
    ctx = _context(data, train_mask, cfg)
    # History: the customer's warm events up to the cold product's moment.
    for h in held:
        events = ctx.user_events.get(h.user)
        if events is not None:
            ctx.user_events[h.user] = events[inter.timestamp[events] <= h.time]
    log(f"cold-start: {len(cold)} cold products, {len(held)} customers")
    rankers = baseline_rankers(ctx, names=("popularity", "content"))
    engine = HybridEngine(cfg).fit(
        _train_data(data, ctx.train), now=float(ctx.train.timestamp.max()), **options
    )
    rankers["hybrid"] = hybrid_ranker(ctx, engine)
    report = Report(
        protocol="cold-start",
        ks=tuple(ks),
        users=len(held),
        items=int(np.asarray(data.item_active).sum()),
        events=len(inter),
        config=config.to_dict(),
        notes={"cold_products": len(cold), "share": share, "seed": seed},
    )
    served = engine
    if autotune is not None:
        served = _served(data, config, autotune, engine=engine, ctx=ctx, base=train_mask,
                         min_items=min_items, seed=seed, log=log, options=options,
                         notes=report.notes)  # fmt: skip
        rankers["hybrid"] = hybrid_ranker(ctx, served)
        rankers["hybrid_defaults"] = hybrid_ranker(ctx, engine)
    if sequential is not None:
        _add_sequential(report, rankers, ctx, served, sequential, log=log, gated=False)
    report.results = score_rankers(ctx, rankers, held, ks)
    return report


def _add_sequential(
    report: Report,
    rankers: dict[str, Ranker],
    ctx: _Context,
    engine: HybridEngine,
    config: SequentialConfig,
    *,
    log: Callable[[str], None],
    fit_options: Mapping[str, Any] | None = None,
    gated: bool = True,
) -> None:
    """Train the sequential model on ``ctx.train`` and add ``sequential`` and
    ``hybrid_sequential``; with ``gated``, note whether a fit would serve it (the validation
    gate on the same training data)."""
    from .sequential import gate, sequential_rankers  # It builds on this module's neighbours.

    started = time.perf_counter()
    more, fit, model = sequential_rankers(ctx, engine, config=config, log=log)
    report.notes["sequential"] = fit
    if model is not None and gated:
        report.notes["sequential_gate"] = gate(
            _train_data(ctx.data, ctx.train), model, config=ctx.config, fit_options=fit_options
        )
    report.notes["sequential_seconds"] = round(time.perf_counter() - started, 1)
    rankers.update(more)
