"""Reads of experiments: lists, the running ones, an experiment's served lists and events for
its attribution run, and its results computed from the aggregates that run wrote.

The results never scan the log or the events: they read :class:`VisitorStats` (one SQL
aggregate per variant) and :class:`DailyStats` (a row per variant and day).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Count, F, FloatField, Max, Min, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Cast

from jobs.models import Job
from recommender.models import Customer, Event, RecommendationConfig, RecommendationLog

from .analysis import stats
from .analysis.attribution import COUNTED
from .analysis.replay import ReplayedEvent, VisitorTotals
from .models import (
    DailyStats,
    Experiment,
    ExperimentJobKind,
    ExperimentState,
    Metric,
    Variant,
    VisitorStats,
)

# The per-visitor value of each metric (the numerator; impressions are the denominator), and
# the factor it is shown with.
METRIC_COLUMNS: dict[str, str] = {
    Metric.CTR: "clicks",
    Metric.ADD_TO_CART_RATE: "carts",
    Metric.CONVERSION: "purchases",
    Metric.REVENUE_PER_MILLE: "revenue",
    Metric.COVERAGE: "filled",
}
METRIC_SCALE: dict[str, float] = {Metric.REVENUE_PER_MILLE: 1000.0}
# Ids read per query when looking up customers, sessions or list ids.
_CHUNK = 2000


def experiment_list() -> QuerySet[Experiment]:
    return Experiment.objects.prefetch_related(
        Prefetch("variants", queryset=Variant.objects.order_by("position"))
    )


def experiment_get(*, pk: int) -> Experiment | None:
    return experiment_list().filter(pk=pk).first()


def experiments_running() -> list[Experiment]:
    """Running experiments with their variants (one query each): the serving cache's source."""
    return list(experiment_list().filter(state=ExperimentState.RUNNING))


def experiments_running_on(*, lists: Iterable[str], exclude_pk: int | None = None) -> list[str]:
    """Names of the running experiments covering any of ``lists``."""
    wanted = set(lists)
    running = Experiment.objects.filter(state=ExperimentState.RUNNING)
    if exclude_pk is not None:
        running = running.exclude(pk=exclude_pk)
    return [e.name for e in running if wanted & set(e.lists)]


def config_versions_existing(versions: Iterable[int]) -> set[int]:
    return set(
        RecommendationConfig.objects.filter(version__in=set(versions)).values_list(
            "version", flat=True
        )
    )


# The attribution run's reads -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedList:
    recommendation_id: str
    kind: str
    customer: str | None
    session_id: str
    variant: str
    created_at: datetime
    product_ids: tuple[str, ...]


def experiment_logged_lists(*, experiment: Experiment) -> Iterator[LoggedList]:
    """The lists the experiment served, oldest first."""
    rows = (
        RecommendationLog.objects.filter(experiment_id=experiment.pk)
        .order_by("created_at", "id")
        .values_list(
            "recommendation_id",
            "kind",
            "customer__external_id",
            "session_id",
            "variant",
            "created_at",
            "product_ids",
        )
    )
    for rid, kind, customer, session_id, variant, at, product_ids in rows.iterator(2000):
        yield LoggedList(str(rid), kind, customer, session_id, variant, at, tuple(product_ids))


@dataclass(frozen=True, slots=True)
class EventRow:
    pk: int
    event_id: str
    customer: str
    session_id: str
    product: str | None
    event_type: str
    occurred_at: datetime
    value: float
    recommendation_id: str


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def experiment_candidate_events(
    *,
    customers: Sequence[str],
    sessions: Sequence[str],
    recommendation_ids: Sequence[str],
    since: datetime,
    until: datetime,
) -> list[EventRow]:
    """Counted events (click, add to cart, purchase) between ``since`` and ``until`` of these
    customers or sessions, or naming one of these lists; each once, in time order."""
    base = Event.objects.filter(
        event_type__in=list(COUNTED), occurred_at__gte=since, occurred_at__lte=until
    )
    filters = [Q(customer__external_id__in=c) for c in _chunks(customers)]
    filters += [Q(session_id__in=s) for s in _chunks(sessions)]
    filters += [Q(recommendation_id__in=r) for r in _chunks(recommendation_ids)]
    found: dict[int, EventRow] = {}
    for condition in filters:
        rows = base.filter(condition).values_list(
            "pk", "event_id", "customer__external_id", "session_id", "product__external_id",
            "event_type", "occurred_at", "value", "recommendation_id",
        )  # fmt: skip
        for pk, eid, customer, session, product, etype, at, value, rid in rows.iterator(2000):
            found[pk] = EventRow(
                pk, eid, customer, session, product, etype, at,
                float(value or 0), str(rid) if rid else "",
            )  # fmt: skip
    return sorted(found.values(), key=lambda e: (e.occurred_at, e.pk))


def recommendation_ids_unknown(*, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` no served list has."""
    wanted = sorted(set(ids))
    known: set[str] = set()
    for chunk in _chunks(wanted):
        known |= {
            str(r)
            for r in RecommendationLog.objects.filter(recommendation_id__in=chunk).values_list(
                "recommendation_id", flat=True
            )
        }
    return set(wanted) - known


# Results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: str
    estimate: stats.Estimate
    comparison: stats.Comparison | None  # None for the control


@dataclass(frozen=True, slots=True)
class VariantResult:
    name: str
    share: int
    is_control: bool
    visitors: int
    impressions: int
    clicks: int
    carts: int
    purchases: int
    revenue: float
    metrics: dict[str, MetricResult]


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    variant: str
    metric: str
    max_drop_pct: float
    state: str


@dataclass(frozen=True, slots=True)
class DailyPoint:
    day: date
    variant: str
    metric: str
    estimate: stats.Estimate


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    experiment: Experiment
    variants: list[VariantResult]
    srm: stats.Srm
    decision: str
    horizon_reached: bool
    guardrails: list[GuardrailResult]
    attribution: dict[str, Any]
    daily: list[DailyPoint] = field(default_factory=list)


def _sums_of(row: dict[str, Any], column: str) -> stats.Sums:
    return stats.Sums(
        n=int(row["n"]),
        x=float(row["x"] or 0),
        xx=float(row["xx"] or 0),
        y=float(row[f"{column}_y"] or 0),
        yy=float(row[f"{column}_yy"] or 0),
        xy=float(row[f"{column}_xy"] or 0),
    )


def experiment_variant_sums(*, experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Per variant, the per-visitor sums of every metric: one aggregate query."""
    impressions = Cast(F("impressions"), FloatField())
    aggregates: dict[str, Any] = {
        "n": Count("id"),
        "x": Sum(impressions),
        "xx": Sum(impressions * impressions),
        "clicks_total": Sum("clicks"),
        "carts_total": Sum("carts"),
        "purchases_total": Sum("purchases"),
        "revenue_total": Sum("revenue"),
    }
    for column in set(METRIC_COLUMNS.values()):
        y = Cast(F(column), FloatField())
        aggregates[f"{column}_y"] = Sum(y)
        aggregates[f"{column}_yy"] = Sum(y * y)
        aggregates[f"{column}_xy"] = Sum(y * impressions)
    rows = (
        VisitorStats.objects.filter(experiment=experiment)
        .values("variant")
        .annotate(**aggregates)
        .order_by("variant")
    )
    return {row["variant"]: row for row in rows}


def _decision(
    experiment: Experiment,
    variants: list[VariantResult],
    srm: stats.Srm,
    horizon_reached: bool,
) -> str:
    label = Metric(experiment.primary_metric).label
    if not variants or not any(v.visitors for v in variants):
        return "No data yet: no attribution run has counted a visitor."
    if srm.flagged:
        return (
            f"Sample ratio mismatch (chi-square {srm.chi2:.1f}, p = {srm.p_value:.2g}): visitors "
            "per variant do not match the planned shares, so assignment or logging is broken. "
            "Do not trust these results."
        )
    if not horizon_reached:
        fewest = min(v.visitors for v in variants)
        return (
            f"Collecting: {fewest} of {experiment.horizon_visitors} visitors in the smallest "
            "variant. The decision is read at this fixed horizon, stated up front; acting on an "
            "interim look (peeking) inflates the false-positive rate."
        )
    parts = []
    for v in variants:
        if v.is_control:
            continue
        c = v.metrics[experiment.primary_metric].comparison
        if c is None or c.lift is None or c.low is None or c.high is None or c.p_value is None:
            parts.append(f"{v.name}: no estimate on {label}.")
            continue
        interval = (
            f"{c.lift * 100:+.1f}% [{c.low * 100:.1f}, {c.high * 100:.1f}] (p = {c.p_value:.2g})"
        )
        if c.significant:
            parts.append(f"{v.name} {'wins' if c.lift > 0 else 'loses'} on {label}, {interval}.")
        else:
            parts.append(f"{v.name}: no significant difference on {label}, {interval}.")
    return " ".join(parts)


def experiment_results(*, experiment: Experiment, daily: bool = True) -> ExperimentResults:
    """The experiment's results from its last attribution run's aggregates."""
    variants_rows = list(experiment.variants.all())
    sums = experiment_variant_sums(experiment=experiment)
    estimates: dict[str, dict[str, stats.Estimate]] = {}
    for v in variants_rows:
        row = sums.get(v.name)
        estimates[v.name] = {
            metric: (
                stats.ratio(_sums_of(row, column)).scaled(METRIC_SCALE.get(metric, 1.0))
                if row
                else stats.Estimate(None, None, None, None)
            )
            for metric, column in METRIC_COLUMNS.items()
        }
    control = variants_rows[0].name if variants_rows else ""
    results: list[VariantResult] = []
    for v in variants_rows:
        row = sums.get(v.name) or {}
        metrics = {
            metric: MetricResult(
                metric,
                estimates[v.name][metric],
                None
                if v.name == control
                else stats.compare(estimates[v.name][metric], estimates[control][metric]),
            )
            for metric in METRIC_COLUMNS
        }
        results.append(
            VariantResult(
                name=v.name,
                share=v.share,
                is_control=v.name == control,
                visitors=int(row.get("n") or 0),
                impressions=int(row.get("x") or 0),
                clicks=int(row.get("clicks_total") or 0),
                carts=int(row.get("carts_total") or 0),
                purchases=int(row.get("purchases_total") or 0),
                revenue=float(row.get("revenue_total") or 0),
                metrics=metrics,
            )
        )
    srm = stats.srm([r.visitors for r in results], [r.share for r in results])
    horizon_reached = bool(results) and all(
        r.visitors >= experiment.horizon_visitors for r in results
    )
    guardrails = [
        GuardrailResult(
            variant=r.name,
            metric=g["metric"],
            max_drop_pct=float(g["max_drop_pct"]),
            state=stats.guardrail_state(
                r.metrics[g["metric"]].comparison or stats.Comparison(None, None, None, None, None),
                max_drop_pct=float(g["max_drop_pct"]),
            ),
        )
        for g in experiment.guardrails
        for r in results
        if not r.is_control
    ]
    return ExperimentResults(
        experiment=experiment,
        variants=results,
        srm=srm,
        decision=_decision(experiment, results, srm, horizon_reached),
        horizon_reached=horizon_reached,
        guardrails=guardrails,
        attribution=dict(experiment.attribution),
        daily=experiment_daily(experiment=experiment) if daily else [],
    )


def experiment_daily(*, experiment: Experiment) -> list[DailyPoint]:
    """Each day's metric per variant with its interval (from the run's daily sums)."""
    points = []
    for row in DailyStats.objects.filter(experiment=experiment).order_by("day", "variant"):
        for metric, values in row.sums.items():
            estimate = stats.ratio(stats.Sums(*values)).scaled(METRIC_SCALE.get(metric, 1.0))
            points.append(DailyPoint(row.day, row.variant, metric, estimate))
    return points


# The replay simulator's reads -----------------------------------------------------------------


def events_span() -> tuple[datetime | None, datetime | None]:
    """The oldest and the newest event's time (None without events)."""
    span = Event.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    return span["first"], span["last"]


def events_replayed(*, since: datetime, until: datetime) -> Iterator[ReplayedEvent]:
    """Every event from ``since`` (included) to ``until`` (excluded), in time order: what the
    replay turns into visits (searches too: they belong to a visit, though no list shows them)."""
    rows = (
        Event.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        .order_by("occurred_at", "id")
        .values_list(
            "customer__external_id", "product__external_id", "event_type", "occurred_at", "value"
        )
    )
    for customer, product, event_type, at, value in rows.iterator(5000):
        yield ReplayedEvent(customer, product, event_type, at.timestamp(), float(value or 0))


def customers_by_external_id(*, ids: Iterable[str]) -> dict[str, Customer]:
    """The customers of ``ids`` (those that exist), by external id."""
    wanted = sorted(set(ids))
    found: dict[str, Customer] = {}
    for chunk in _chunks(wanted):
        found.update((c.external_id, c) for c in Customer.objects.filter(external_id__in=chunk))
    return found


def experiment_replays(*, experiment: Experiment) -> list[Experiment]:
    """The replays made of ``experiment``, newest first."""
    return list(
        Experiment.objects.filter(copied_from=experiment, replay__isnull=False).order_by(
            "-created_at", "-id"
        )
    )


def experiment_visitor_totals(*, experiment: Experiment) -> list[VisitorTotals]:
    """Each visitor's totals in the experiment's last results (the A/A calibration's input)."""
    rows = VisitorStats.objects.filter(experiment=experiment).order_by("visitor")
    return [
        VisitorTotals(
            visitor=v.visitor,
            impressions=float(v.impressions),
            values={
                "clicks": float(v.clicks),
                "carts": float(v.carts),
                "purchases": float(v.purchases),
                "revenue": float(v.revenue),
                "filled": float(v.filled),
            },
        )
        for v in rows.iterator(5000)
    ]


def experiment_replay_job(*, experiment: Experiment) -> Job | None:
    """The newest job that replays ``experiment`` (a replay), if any."""
    return (
        Job.objects.filter(
            kind=ExperimentJobKind.EXPERIMENT_REPLAY, params__experiment=experiment.pk
        )
        .order_by("-created_at", "-id")
        .first()
    )
