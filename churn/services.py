"""Writes and orchestration: train a churn model, score every customer, build win-back lists.

The clock of churn is the data's, not the wall's: unless told otherwise, scores are "as of" the
start of the day after the newest event (capped at now). For a live shop that is today; for an
imported history (the Online Retail demo ends in December 2011) it is the end of that history,
where "days since the last purchase" still means something. The same data therefore always
gives the same ``as_of``, and rerunning a scoring run rewrites the same rows.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from churn import selectors
from churn.ml import features as ml_features
from churn.ml.model import ChurnModel, NotEnoughHistory, evaluate, fit_model
from churn.ml.persistence import model_load, model_save
from churn.models import ChurnJobKind, ChurnModelBuild, ChurnScore, RiskBand
from jobs.choices import BuildStatus
from jobs.models import Job
from jobs.services.artifact_store import ArtifactStoreError, unique_name
from jobs.services.artifacts import (
    artifact_local,
    artifact_publishing,
    build_mark_failed,
    builds_prune,
)
from jobs.services.runs import job_create
from recommender.models import Customer, Product, RecommendationKind
from recommender.services import recommendations as recommendation_service
from recommender.services.merchandising import merchandising_rules_serving

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]

# Horizon, risk bands, retraining age and the model folder are settings (RECSITE_CHURN_*).
DRIVERS = 3
# The artifact store's folder (or prefix) of churn model builds.
CHURN_KIND = "churn"
_CHUNK = 2_000


def horizon_days() -> int:
    return int(settings.RECSITE_CHURN_HORIZON_DAYS)


def band_for(score: float) -> str:
    high = float(settings.RECSITE_CHURN_HIGH_RISK)
    medium = float(settings.RECSITE_CHURN_MEDIUM_RISK)
    if score >= high:
        return RiskBand.HIGH
    if score >= medium:
        return RiskBand.MEDIUM
    return RiskBand.LOW


def churn_clock() -> datetime:
    """The default ``as_of``: midnight UTC after the newest event, or now when that is later
    than now (or when there are no events)."""
    now = timezone.now()
    _, last = selectors.event_time_range()
    if last is None:
        return now
    day_after = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return min(day_after, now)


# Training -----------------------------------------------------------------------------------


def churn_model_train(
    *,
    as_of: datetime | None = None,
    horizon: int | None = None,
    progress: Progress | None = None,
    job: Job | None = None,
) -> ChurnModelBuild:
    """Train on snapshots whose labels are known by ``as_of``; store artifact and backtest.

    The backtest is the evaluation protocol of ``evaluate_churn`` at the latest cutoff whose
    label window ends by ``as_of`` (``as_of - horizon``): the model (trained only on earlier
    snapshots), BG/NBD and RFM logistic regression. Training the same data twice gives the same
    version and reuses its build row.
    """
    step = progress or (lambda fraction: None)
    as_of = as_of or churn_clock()
    horizon = horizon or horizon_days()
    log = selectors.event_log_load(until=as_of)
    step(0.1)
    label_end = selectors.to_days(as_of)
    try:
        backtest: dict[str, Any] = evaluate(
            log, cutoff=label_end - horizon, horizon=float(horizon), labels_complete=True
        )
        backtest["cutoff"] = selectors.from_days(label_end - horizon).isoformat()
    except NotEnoughHistory as exc:
        backtest = {"error": str(exc)}
    step(0.6)
    model, _ = fit_model(log, label_end=label_end, horizon=float(horizon))
    step(0.9)
    metrics = {
        "backtest": backtest,
        "train_horizon_days": model.train_horizon,
        "training_rows": model.training_rows,
        "training_churn_rate": round(model.training_churn_rate, 4),
        "training_cutoffs": [selectors.from_days(c).isoformat() for c in model.plan.cutoffs],
        "importances": model.importances,
    }
    build = _churn_model_publish(
        model, job=job, fields={"horizon_days": horizon, "as_of": as_of, "metrics": metrics}
    )
    step(1.0)
    logger.info("Churn model %s trained on %s rows", model.version, model.training_rows)
    return build


def _churn_model_publish(
    model: ChurnModel, *, job: Job | None, fields: dict[str, Any]
) -> ChurnModelBuild:
    """Save ``model`` as a build in the artifact store and mark it READY (the commit point).

    The same data trains the same model (its version is a hash of them): a READY build of that
    version keeps its files, which never change, and only its backtest and ``as_of`` are
    updated. A row of that version left FAILED, BUILDING or RETIRED is built again.
    """
    ready = ChurnModelBuild.objects.filter(version=model.version, status=BuildStatus.READY)
    if ready.update(**fields):
        return ready.get()
    build, _ = ChurnModelBuild.objects.update_or_create(
        version=model.version,
        defaults={**fields, "status": BuildStatus.BUILDING, "path": "", "error": "", "job": job},
    )
    try:
        name = unique_name("model", build.pk, ".json")
        with artifact_publishing(kind=CHURN_KIND, name=name) as publication:
            model_save(model, publication.main)
    except Exception as exc:
        build_mark_failed(model=ChurnModelBuild, pk=build.pk, exc=exc)
        raise
    build.status = BuildStatus.READY
    build.path = publication.location
    build.finished_at = timezone.now()
    build.save(update_fields=["status", "path", "finished_at"])
    churn_models_prune()
    return build


def churn_models_prune(*, keep: int | None = None) -> int:
    """Retire READY model builds beyond the newest ``keep`` (``RECSITE_INDEX_KEEP``) and delete
    their files; returns how many."""
    return builds_prune(model=ChurnModelBuild, kind=CHURN_KIND, keep=keep)


_models: dict[str, ChurnModel] = {}
_models_lock = threading.Lock()


def churn_model_load(*, build: ChurnModelBuild) -> ChurnModel:
    """The build's model, read once per process."""
    with _models_lock:
        model = _models.get(build.version)
        if model is None:
            path = artifact_local(model=ChurnModelBuild, kind=CHURN_KIND, location=build.path)
            model = model_load(path)
            _models.clear()  # One model at a time is all a process needs.
            _models[build.version] = model
        return model


def churn_model_needs_training(*, horizon: int, now: datetime | None = None) -> bool:
    build = selectors.churn_model_build_latest()
    if build is None or build.horizon_days != horizon:
        return True
    try:
        churn_model_load(build=build)
    except (ValueError, OSError, ArtifactStoreError):
        return True  # An artifact of an earlier format, or its files are gone: train anew.
    retrain = int(settings.RECSITE_CHURN_RETRAIN_DAYS)
    return (now or timezone.now()) - build.trained_at > timedelta(days=retrain)


# Scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoringReport:
    model_version: str
    as_of: datetime
    customers: int
    bands: dict[str, int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "bands": self.bands,
            "seconds": round(self.seconds, 2),
        }


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 3)


def drivers_for(
    row: np.ndarray, effects: np.ndarray, medians: np.ndarray, *, top: int = DRIVERS
) -> list[dict[str, Any]]:
    """The features that raise this customer's risk most (or, when none does, that lower it
    most), each with its value, the typical value and its effect in probability points."""
    order = np.argsort(-effects, kind="stable")
    chosen = [j for j in order if effects[j] > 0.005][:top]
    if not chosen:
        chosen = list(np.argsort(np.abs(effects), kind="stable")[::-1][:top])
    names = ml_features.FEATURE_NAMES
    return [
        {
            "feature": names[j],
            "label": ml_features.FEATURE_LABELS[names[j]],
            "value": _number(row[j]),
            "typical": _number(medians[j]),
            "effect": round(float(effects[j]), 4),
        }
        for j in chosen
    ]


def churn_scores_refresh(
    *,
    as_of: datetime | None = None,
    build: ChurnModelBuild | None = None,
    progress: Progress | None = None,
) -> ScoringReport:
    """Score every customer with a purchase before ``as_of`` with ``build`` (default: latest).

    One row per customer and run; a rerun of the same (model, ``as_of``) rewrites the same
    rows with the same values, so it is idempotent.
    """
    started = time.monotonic()
    step = progress or (lambda fraction: None)
    build = build or selectors.churn_model_build_latest()
    if build is None:
        raise NotEnoughHistory("no churn model has been trained yet")
    model = churn_model_load(build=build)
    as_of = as_of or churn_clock()
    log = selectors.event_log_load(until=as_of)
    snap = ml_features.snapshot(log, cutoff=selectors.to_days(as_of), horizon=model.train_horizon)
    step(0.05)
    computed_at = timezone.now()
    customer_pks = [log.customer_ids[i] for i in snap.customers]
    bands: dict[str, int] = dict.fromkeys(RiskBand.values, 0)
    n = len(customer_pks)
    for start in range(0, n, _CHUNK):
        X = snap.X[start : start + _CHUNK]
        scores = model.predict(X)
        effects = model.contributions(X)
        rows = []
        for i, score in enumerate(scores):
            score = float(min(max(score, 0.0), 1.0))
            band = band_for(score)
            bands[band] += 1
            rows.append(
                ChurnScore(
                    customer_id=customer_pks[start + i],
                    score=round(score, 6),
                    band=band,
                    model_version=build.version,
                    drivers=drivers_for(X[i], effects[i], model.medians),
                    as_of=as_of,
                    computed_at=computed_at,
                )
            )
        with transaction.atomic():
            ChurnScore.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["customer", "model_version", "as_of"],
                update_fields=["score", "band", "drivers"],
            )
        step(0.05 + 0.95 * min(start + _CHUNK, n) / max(n, 1))
    step(1.0)
    report = ScoringReport(build.version, as_of, n, bands, time.monotonic() - started)
    logger.info("Churn scoring: %s", report.as_dict())
    return report


# Jobs ---------------------------------------------------------------------------------------


def churn_job_params(*, retrain: bool = False, as_of: datetime | None = None) -> dict[str, Any]:
    """A churn job's params: train first even when the model is current; score as of when."""
    params: dict[str, Any] = {"retrain": retrain}
    if as_of is not None:
        params["as_of"] = as_of.isoformat()
    return params


def churn_job_create(
    *,
    triggered_by: User | AnonymousUser | None = None,
    retrain: bool = False,
    as_of: datetime | None = None,
) -> Job:
    """A queued churn job, for a command to run here or follow (the API, the dashboard and the
    beat task start one with ``job_start``)."""
    return job_create(
        kind=ChurnJobKind.CHURN_SCORE,
        params=churn_job_params(retrain=retrain, as_of=as_of),
        triggered_by=triggered_by,
    )


def _job_as_of(job: Job) -> datetime | None:
    raw = job.params.get("as_of")
    return datetime.fromisoformat(raw) if raw else None


def job_step_train(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Job step 1: train when asked, when no model fits the horizon, or when it is stale."""
    horizon = horizon_days()
    if not job.params.get("retrain") and not churn_model_needs_training(horizon=horizon):
        build = selectors.churn_model_build_latest()
        assert build is not None
        return {"trained": False, "model_version": build.version}
    build = churn_model_train(as_of=_job_as_of(job), horizon=horizon, progress=progress, job=job)
    return {"trained": True, "model_version": build.version}


def job_step_score(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Job step 2: score every customer with the latest model."""
    return churn_scores_refresh(as_of=_job_as_of(job), progress=progress).as_dict()


# Win-back -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WinBackItem:
    product: Product
    source: str  # "repurchase" or "recommendation"
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class WinBackList:
    customer: Customer
    churn: ChurnScore | None
    as_of: datetime
    items: list[WinBackItem] = field(default_factory=list)
    recommendation_id: str | None = None
    note: str = ""


def _repurchase_candidates(
    *, customer: Customer, as_of: datetime, k: int, hidden: Collection[int] = ()
) -> list[WinBackItem]:
    """Products bought on at least two days, closest to their usual repurchase time first;
    never the ``hidden`` ones (what a merchandising filter removes)."""
    days: dict[int, list[float]] = {}
    for product_pk, moment in selectors.customer_purchase_history(customer=customer):
        if moment >= as_of:
            continue
        day = math.floor(selectors.to_days(moment))
        bought = days.setdefault(product_pk, [])
        if not bought or bought[-1] != day:
            bought.append(day)
    now = selectors.to_days(as_of)
    ranked = []
    for product_pk, bought in days.items():
        if len(bought) < 2:
            continue
        interval = (bought[-1] - bought[0]) / (len(bought) - 1)
        since = now - bought[-1]
        due = since / max(interval, 1.0)
        ranked.append((abs(math.log(max(due, 1e-3))), product_pk, len(bought), interval, since))
    ranked.sort()
    active = Product.objects.in_bulk([r[1] for r in ranked])
    out = []
    for closeness, product_pk, times, interval, since in ranked:
        product = active.get(product_pk)
        if product is None or not product.is_active or product_pk in hidden:
            continue
        out.append(
            WinBackItem(
                product=product,
                source="repurchase",
                score=round(1.0 / (1.0 + closeness), 4),
                reason=f"Bought {times} times, about every {interval:.0f} days; "
                f"last bought {since:.0f} days ago",
            )
        )
        if len(out) == k:
            break
    return out


def winback_list(*, customer: Customer, k: int = 10) -> WinBackList:
    """A re-engagement list: repurchase candidates interleaved with the customer's strongest
    recommendations, each with its reason.

    The recommendations come from the recommendation engine (and are logged like any list it
    serves, so clicks on them are attributed); without a fitted engine the list holds the
    repurchase candidates only, and says so in ``note``.
    """
    latest = selectors.churn_score_latest(customer=customer)
    as_of = latest.as_of if latest is not None else churn_clock()
    # A filter rule on customer lists (out of stock, a brand not to show) hides a repurchase
    # candidate too; the recommendations below apply every rule themselves.
    hidden = merchandising_rules_serving(surface=RecommendationKind.CUSTOMER).score_hook.removed
    repurchase = _repurchase_candidates(customer=customer, as_of=as_of, k=k, hidden=hidden)
    recommended: list[WinBackItem] = []
    recommendation_id = None
    note = ""
    try:
        result = recommendation_service.customer_recommendations(
            customer=customer, k=k, exclude=[item.product.pk for item in repurchase]
        )
    except recommendation_service.EngineNotReady:
        note = "No recommendation engine is fitted yet: repurchase candidates only."
    else:
        recommendation_id = str(result.recommendation_id)
        recommended = [
            WinBackItem(
                product=item.product,
                source="recommendation",
                score=round(float(item.score), 4),
                reason=item.reason or "Recommended for this customer",
            )
            for item in result.items
        ]
    items: list[WinBackItem] = []
    seen: set[int] = set()
    pairs = zip(
        _padded(repurchase, len(recommended)), _padded(recommended, len(repurchase)), strict=True
    )
    for pair in pairs:
        for item in pair:
            if item is not None and item.product.pk not in seen and len(items) < k:
                seen.add(item.product.pk)
                items.append(item)
    return WinBackList(customer, latest, as_of, items, recommendation_id, note)


def _padded(items: list[WinBackItem], length: int) -> list[WinBackItem | None]:
    return [*items, *([None] * max(length - len(items), 0))]


# Evaluation ---------------------------------------------------------------------------------


def churn_evaluate(*, cutoff: date, horizon: int) -> dict[str, Any]:
    """The evaluation protocol on the imported events (``manage.py evaluate_churn``).

    ``cutoff`` is a day: history runs through its end (UTC), the label window is the
    ``horizon`` days after it. Customers: those with a purchase by the cutoff.
    """
    started = time.monotonic()
    moment = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC) + timedelta(days=1)
    log = selectors.event_log_load(until=moment + timedelta(days=horizon))
    result = evaluate(log, cutoff=selectors.to_days(moment), horizon=float(horizon))
    result["cutoff"] = cutoff.isoformat()
    result["history_until"] = moment.isoformat()
    result["label_window"] = [
        moment.isoformat(),
        (moment + timedelta(days=horizon)).isoformat(),
    ]
    result["training_cutoffs"] = [
        selectors.from_days(c).isoformat() for c in result["training_cutoffs"]
    ]
    result["events"] = len(log)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
