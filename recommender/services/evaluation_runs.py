"""Stored offline evaluations: one :class:`EvaluationRun` per protocol run, per config version.

``manage.py evaluate`` records every report it prints; the evaluate job (dashboard button,
``POST /api/v1/jobs/evaluate``) runs leave-last-out for the active configuration on a seeded
sample of customers and records it. The evaluation page charts the runs over time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from django.contrib.auth.models import User

from jobs.models import Job
from recommender.evaluation.baseline_tuning import baselines_on_validation
from recommender.evaluation.protocols import Report
from recommender.evaluation.rankers import (
    _context,
    _train_data,
    hybrid_ranker,
    masked_config,
    score_rankers,
)
from recommender.evaluation.splits import held_out_sample, leave_last_out
from recommender.ml.engine import EngineConfig, EngineData, HybridEngine
from recommender.models import EvaluationRun, RecommendationConfig

from .evaluation import engine_data_load, fit_options
from .recommendations import engine_config_active

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE = 1000
MAX_SAMPLE = 100_000
DEFAULT_KS = (10, 20)


def evaluation_run_record(
    *,
    report: Report,
    config_version: int,
    seconds: float | None = None,
    job: Job | None = None,
    created_by: User | None = None,
) -> EvaluationRun:
    """Store one protocol report: ``{method: {metric: value}}`` and what it was run on."""
    dataset: dict[str, Any] = {
        "customers": report.users,
        "products": report.items,
        "events": report.events,
        "ks": list(report.ks),
    }
    for key in ("sample", "eligible", "seed", "cold_products", "share"):
        if key in report.notes:
            dataset[key] = report.notes[key]
    return EvaluationRun.objects.create(
        config_version=config_version,
        protocol=report.protocol,
        metrics={result.name: dict(result.metrics) for result in report.results},
        dataset=dataset,
        seconds=None if seconds is None else round(seconds, 3),
        job=job,
        created_by=created_by,
    )


def config_version_of(config: EngineConfig) -> int | None:
    """The newest saved version whose configuration equals ``config``, if any."""
    for version, stored in RecommendationConfig.objects.order_by("-version").values_list(
        "version", "config"
    ):
        try:
            if EngineConfig.from_dict(stored) == config:
                return int(version)
        except ValueError:
            continue  # A hand-edited row; it matches nothing.
    return None


def evaluate_sample(
    data: EngineData,
    *,
    config: EngineConfig,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    ks: Sequence[int] = DEFAULT_KS,
    min_items: int = 3,
    progress: Callable[[float], None] = lambda _: None,
) -> Report:
    """Leave-last-out as ``manage.py evaluate`` runs it (same split, baselines with their
    settings chosen on validation, metrics), scored on ``sample`` customers drawn with
    ``numpy.random.default_rng(seed)`` from the held-out ones (all of them when fewer). The
    hybrid is ``config`` as it is, without ``train``'s automatic tuning: a version tuned
    automatically has seen these test items and reads optimistic (docs/tuning.md)."""
    inter = data.interactions
    split = leave_last_out(inter, min_items=min_items)
    held = held_out_sample(split.held_out, size=sample, seed=seed)
    progress(0.1)
    cfg = masked_config(config, inter)
    ctx = _context(data, split.train, cfg)
    rankers, baselines = baselines_on_validation(
        data, ctx, train_mask=split.train, min_items=min_items, seed=seed
    )
    progress(0.3)
    engine = HybridEngine(cfg).fit(
        _train_data(data, ctx.train),
        now=float(ctx.train.timestamp.max()),
        **fit_options(data, config),
    )
    rankers["hybrid"] = hybrid_ranker(ctx, engine)
    progress(0.5)
    report = Report(
        protocol="leave-last-out",
        ks=tuple(ks),
        users=len(held),
        items=int(np.asarray(data.item_active).sum()),
        events=len(inter),
        config=config.to_dict(),
        notes={
            "sample": len(held),
            "eligible": len(split.held_out),
            "seed": seed,
            "baselines": baselines,
        },
    )
    report.results = score_rankers(ctx, rankers, held, ks)
    progress(1.0)
    return report


def evaluation_job_run(*, job: Job, progress: Callable[[float], None]) -> Mapping[str, Any]:
    """The evaluate job's step: the active configuration on a sample; stores the run."""
    started = time.perf_counter()
    sample = int(job.params.get("sample", DEFAULT_SAMPLE))
    seed = int(job.params.get("seed", 0))
    version, config = engine_config_active()
    data = engine_data_load(embed_missing=False)
    progress(0.2)
    report = evaluate_sample(
        data,
        config=config,
        sample=sample,
        seed=seed,
        progress=lambda fraction: progress(0.2 + 0.8 * fraction),
    )
    run = evaluation_run_record(
        report=report,
        config_version=version,
        seconds=time.perf_counter() - started,
        job=job,
        created_by=job.triggered_by,
    )
    hybrid = run.metrics.get("hybrid", {})
    logger.info("Evaluation run %s of config v%d: hybrid %s", run.pk, version, hybrid)
    return {
        "evaluation_run": run.pk,
        "config_version": version,
        "customers": report.users,
        "recall@10": hybrid.get("recall@10"),
        "ndcg@10": hybrid.get("ndcg@10"),
        "seconds": run.seconds,
    }
