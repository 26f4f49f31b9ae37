"""Shareable reports: the aggregates a shop may share outside, released once, privacy-safe.

The dashboard and the API show the shop's own staff exact figures (docs/privacy.md says why).
What leaves the shop goes through here: an admin (or a ``privacy`` token) asks for a report
with some sections; a job (kind ``privacy_report``) reads the exact figures
(:mod:`privacy.selectors`), puts every one through k-suppression or the Laplace mechanism
(:mod:`privacy.aggregates`), and stores the result as an :class:`AggregateRelease`, which is
read back as released, never recomputed (fresh noise on every read could be averaged away).

Each section uses one mechanism, fixed (docs/privacy.md, "Privacy-safe aggregates", has the
whole inventory and the reasons):

| section | mechanism | queries (sensitivity for one customer) |
|---|---|---|
| ``customers`` | Laplace | held, active, buying: one vector, Δ = 3 |
| ``weekly_active`` | Laplace | active customers per week: Δ = the number of weeks |
| ``categories`` | Laplace | buyers per category, Δ = m; revenue, clipped at C, Δ = m·C |
| ``churn_bands`` | k-suppression | customers per risk band of the latest run (a partition) |
| ``experiment`` | Laplace | per variant: visitors Δ = 1, converted Δ = 1, revenue Δ = C |

A release spends ``RECSITE_AGGREGATE_EPSILON`` (when it has a Laplace section), split equally
over its queries; the releases of the last ``RECSITE_AGGREGATE_BUDGET_DAYS`` may spend
``RECSITE_AGGREGATE_EPSILON_BUDGET`` together, no more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.choices import JobState
from jobs.models import Job
from jobs.registry import Progress
from privacy.aggregates import (
    SUPPRESSED,
    Cell,
    LaplaceQuery,
    epsilon_split,
    k_suppress,
    laplace_release,
    noise_generator,
)
from privacy.context import Actor, current_actor
from privacy.models import AggregateRelease
from privacy.selectors import (
    ReportWindow,
    category_purchases,
    churn_band_counts,
    customer_totals,
    epsilon_spent,
    experiment_get,
    experiment_variant_figures,
    report_window,
    weekly_active_customers,
)

from .audit import audit_record

REPORT_KIND = "privacy_report"
REPORT_LABEL = "Shareable report"
REPORT_FORMAT = "recsite-shareable-report"
REPORT_VERSION = 1

DEFAULT_DAYS = 90
MAX_DAYS = 3650
MAX_NOTE = 200

#: The sections a report may hold, in the order a report shows them, with their titles.
SECTIONS: dict[str, str] = {
    "customers": "Customers held, active and buying",
    "weekly_active": "Active customers per week",
    "categories": "Buyers and revenue per product category",
    "churn_bands": "Customers per churn risk band",
    "experiment": "An experiment: visitors, conversions and revenue per variant",
}
#: How many Laplace queries each section releases (0: k-suppression, no budget spent).
LAPLACE_QUERIES: dict[str, int] = {
    "customers": 1,
    "weekly_active": 1,
    "categories": 2,
    "churn_bands": 0,
    "experiment": 3,
}


class ReportError(Exception):
    """A report that cannot be made: ``field`` and ``message`` say why; ``conflict``: because
    another report is being made (409 rather than 422)."""

    def __init__(self, field: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.conflict = conflict


@dataclass(frozen=True, slots=True)
class ReportSpec:
    sections: tuple[str, ...]
    days: int = DEFAULT_DAYS
    experiment: int | None = None
    note: str = ""

    def as_params(self) -> dict[str, Any]:
        return {
            "sections": list(self.sections),
            "days": self.days,
            "experiment": self.experiment,
            "note": self.note,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ReportSpec:
        return cls(
            sections=tuple(params["sections"]),
            days=int(params["days"]),
            experiment=params.get("experiment"),
            note=str(params.get("note") or ""),
        )


def report_epsilon(sections: Sequence[str]) -> float:
    """The budget a report with these sections spends: ``RECSITE_AGGREGATE_EPSILON`` when any
    section releases through the Laplace mechanism, else 0."""
    if any(LAPLACE_QUERIES[s] for s in sections):
        return float(settings.RECSITE_AGGREGATE_EPSILON)
    return 0.0


@dataclass(frozen=True, slots=True)
class Budget:
    limit: float  # 0: no limit.
    days: int
    spent: float

    @property
    def left(self) -> float | None:
        return None if not self.limit else max(0.0, self.limit - self.spent)

    def allows(self, epsilon: float) -> bool:
        return not self.limit or not epsilon or self.spent + epsilon <= self.limit + 1e-9


def report_budget() -> Budget:
    """What the releases of the last ``RECSITE_AGGREGATE_BUDGET_DAYS`` spent, and the limit."""
    days = int(settings.RECSITE_AGGREGATE_BUDGET_DAYS)
    return Budget(
        limit=float(settings.RECSITE_AGGREGATE_EPSILON_BUDGET),
        days=days,
        spent=epsilon_spent(since=timezone.now() - timedelta(days=days)),
    )


def _budget_check(sections: Sequence[str]) -> None:
    epsilon = report_epsilon(sections)
    budget = report_budget()
    if not budget.allows(epsilon):
        raise ReportError(
            "sections",
            f"the privacy budget is spent: releases of the last {budget.days} days spent "
            f"ε = {budget.spent:g} of {budget.limit:g} and this report needs {epsilon:g} "
            "(RECSITE_AGGREGATE_EPSILON_BUDGET; a report of churn bands alone spends none)",
        )


def report_job_active() -> Job | None:
    return (
        Job.objects.filter(kind=REPORT_KIND, state__in=[JobState.QUEUED, JobState.RUNNING])
        .order_by("-created_at")
        .first()
    )


def report_spec_check(
    *,
    sections: Sequence[str],
    days: int = DEFAULT_DAYS,
    experiment: int | None = None,
    note: str = "",
) -> ReportSpec:
    """The report asked for, checked: known sections (in the report's order, once each), a
    window of 1 to ``MAX_DAYS`` days, an experiment that has started exactly when its section is
    asked for, budget left, and no other report being made."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ReportError("sections", f"unknown section(s): {', '.join(unknown)}")
    if not sections:
        raise ReportError("sections", f"choose at least one of: {', '.join(SECTIONS)}")
    if not 1 <= days <= MAX_DAYS:
        raise ReportError("days", f"must be between 1 and {MAX_DAYS}")
    if len(note) > MAX_NOTE:
        raise ReportError("note", f"at most {MAX_NOTE} characters")
    if "experiment" in sections:
        if experiment is None:
            raise ReportError("experiment", "the experiment section needs an experiment")
        found = experiment_get(pk=experiment)
        if found is None:
            raise ReportError("experiment", f"experiment {experiment} does not exist")
        if found.started_at is None:
            raise ReportError("experiment", f"experiment {experiment} has not started")
    elif experiment is not None:
        raise ReportError("experiment", "an experiment is only read by the experiment section")
    chosen = tuple(s for s in SECTIONS if s in sections)
    _budget_check(chosen)
    if report_job_active() is not None:
        raise ReportError("sections", "a report is being made; wait for it", conflict=True)
    return ReportSpec(sections=chosen, days=days, experiment=experiment, note=note)


def report_job_params(*, spec: ReportSpec) -> dict[str, Any]:
    """The job's parameters: the report asked for, and who asked (the job runs as nobody)."""
    return {**spec.as_params(), "requested_by": current_actor().label[:200]}


def report_requested(*, job: Job, spec: ReportSpec) -> None:
    audit_record(action="report.request", target=f"job:{job.pk}", detail=spec.as_params())


# Making one ----------------------------------------------------------------------------------


def _row(group: str, cells: Mapping[str, Cell]) -> dict[str, Any]:
    return {"group": group, "values": {key: cell.as_dict() for key, cell in cells.items()}}


def _section(
    name: str,
    *,
    mechanism: str,
    unit: str,
    columns: Sequence[tuple[str, str]],
    rows: list[dict[str, Any]],
    queries: Sequence[LaplaceQuery] = (),
    notes: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "title": SECTIONS[name],
        "mechanism": mechanism,
        "unit": unit,
        "queries": [q.as_dict() for q in queries],
        "columns": [{"key": key, "label": label} for key, label in columns],
        "rows": rows,
        "notes": list(notes),
        **extra,
    }


def _noise_note(queries: Sequence[LaplaceQuery], k: int) -> str:
    margins = ", ".join(f"{q.measure} ± {q.margin():,.0f}" for q in queries)
    return (
        f"Every figure carries Laplace noise (95% of the time within {margins}); a count below "
        f"{k} reads “< {k}” and the figures that depend on it are withheld."
    )


@dataclass(frozen=True, slots=True)
class _Context:
    k: int
    epsilon: float  # Of each query.
    window: ReportWindow | None
    rng: np.random.Generator
    revenue_clip: float
    max_categories: int


def _customers(ctx: _Context, spec: ReportSpec) -> dict[str, Any]:
    query = LaplaceQuery(
        "customers", 3, ctx.epsilon, "a customer counts at most once in each of the 3 figures"
    )
    totals = customer_totals(window=ctx.window)
    cells = laplace_release(
        [totals.customers, totals.active, totals.buyers], query=query, rng=ctx.rng, k=ctx.k
    )
    groups = ("customers held", "active in the window", "buying in the window")
    return _section(
        "customers",
        mechanism="laplace",
        unit="customer",
        columns=[("customers", "customers")],
        rows=[_row(g, {"customers": c}) for g, c in zip(groups, cells, strict=True)],
        queries=[query],
        notes=[_noise_note([query], ctx.k)],
    )


def _weekly_active(ctx: _Context, spec: ReportSpec) -> dict[str, Any]:
    weeks = weekly_active_customers(window=ctx.window) if ctx.window else []
    if not weeks:
        return _section(
            "weekly_active", mechanism="laplace", unit="customer", columns=[], rows=[],
            notes=["No events yet."],
        )  # fmt: skip
    query = LaplaceQuery(
        "customers",
        len(weeks),
        ctx.epsilon,
        f"a customer is counted at most once in each of the {len(weeks)} weeks",
    )
    cells = laplace_release([n for _, n in weeks], query=query, rng=ctx.rng, k=ctx.k)
    return _section(
        "weekly_active",
        mechanism="laplace",
        unit="customer",
        columns=[("customers", "active customers")],
        rows=[
            _row(f"week of {week.isoformat()}", {"customers": c})
            for (week, _), c in zip(weeks, cells, strict=True)
        ],
        queries=[query],
        notes=[_noise_note([query], ctx.k)],
    )


def _categories(ctx: _Context, spec: ReportSpec) -> dict[str, Any]:
    m, clip = ctx.max_categories, ctx.revenue_clip
    figures = (
        category_purchases(window=ctx.window, max_categories=m, revenue_clip=clip)
        if ctx.window
        else {}
    )
    buyers_q = LaplaceQuery(
        "buyers", m, ctx.epsilon,
        f"a customer counts in at most {m} categories (those they bought most in)",
    )  # fmt: skip
    revenue_q = LaplaceQuery(
        "revenue", m * clip, ctx.epsilon,
        f"a customer's revenue in each of their {m} categories is clipped at {clip:g}",
    )  # fmt: skip
    names = list(figures)
    buyers = laplace_release(
        [figures[c].buyers for c in names], query=buyers_q, rng=ctx.rng, k=ctx.k
    )
    revenue = laplace_release([figures[c].revenue for c in names], query=revenue_q, rng=ctx.rng)
    withheld = Cell(None, SUPPRESSED)
    rows = [
        _row(c, {"buyers": b, "revenue": withheld if b.withheld else r})
        for c, b, r in zip(names, buyers, revenue, strict=True)
    ]
    notes = [_noise_note([buyers_q, revenue_q], ctx.k)]
    if not names:
        notes = ["No product has a category." if ctx.window else "No events yet."]
    return _section(
        "categories",
        mechanism="laplace",
        unit="customer",
        columns=[("buyers", "buyers"), ("revenue", "revenue (clipped)")],
        rows=rows,
        queries=[buyers_q, revenue_q],
        notes=notes,
    )


def _churn_bands(ctx: _Context, spec: ReportSpec) -> dict[str, Any]:
    bands = churn_band_counts()
    if bands is None:
        return _section(
            "churn_bands", mechanism="k-suppression", unit="customer", columns=[], rows=[],
            notes=["No customer has been scored yet."],
        )  # fmt: skip
    table = k_suppress(bands.customers, k=ctx.k)
    return _section(
        "churn_bands",
        mechanism="k-suppression",
        unit="customer",
        columns=[("customers", "customers")],
        rows=[_row(band, {"customers": cell}) for band, cell in table.cells.items()],
        notes=[
            f"Exact counts. A band of fewer than {ctx.k} customers is suppressed, and so is "
            "another band whenever the total would give a suppressed one back; every "
            "suppressed band reads the same."
        ],
        total={"customers": table.total.as_dict()},
        as_of=bands.as_of.isoformat(),
    )


def _rate(numerator: Cell, denominator: Cell, *, percent: bool) -> Cell:
    if numerator.withheld or denominator.withheld or not denominator.value:
        return Cell(None, SUPPRESSED)
    assert numerator.value is not None
    value = numerator.value / denominator.value
    if percent:
        value = min(1.0, value)
        return Cell(round(value, 4), f"{value:.1%}")
    return Cell(round(value, 2), f"{value:,.2f}")


def _experiment(ctx: _Context, spec: ReportSpec) -> dict[str, Any]:
    experiment = experiment_get(pk=spec.experiment) if spec.experiment is not None else None
    if experiment is None:
        raise ReportError("experiment", f"experiment {spec.experiment} does not exist")
    clip = ctx.revenue_clip
    figures = experiment_variant_figures(experiment=experiment, revenue_clip=clip)
    names = list(figures)
    visitors_q = LaplaceQuery("visitors", 1, ctx.epsilon, "a visitor is in one variant")
    converted_q = LaplaceQuery(
        "converted", 1, ctx.epsilon, "a visitor counts once, if they bought at all"
    )
    revenue_q = LaplaceQuery(
        "revenue", clip, ctx.epsilon, f"a visitor's revenue is clipped at {clip:g}"
    )
    visitors = laplace_release(
        [figures[v].visitors for v in names], query=visitors_q, rng=ctx.rng, k=ctx.k
    )
    converted = laplace_release(
        [figures[v].converted for v in names], query=converted_q, rng=ctx.rng, k=ctx.k
    )
    revenue = laplace_release([figures[v].revenue for v in names], query=revenue_q, rng=ctx.rng)
    withheld = Cell(None, SUPPRESSED)
    rows = []
    for name, n, c, r in zip(names, visitors, converted, revenue, strict=True):
        if n.withheld:
            values = dict.fromkeys(
                ("converted", "conversion", "revenue", "revenue_per_visitor"), withheld
            )
            rows.append(_row(name, {"visitors": n, **values}))
            continue
        # The revenue is the buyers': withheld with their count.
        revenue_cell = withheld if c.withheld else r
        rows.append(
            _row(
                name,
                {
                    "visitors": n,
                    "converted": c,
                    "conversion": _rate(c, n, percent=True),
                    "revenue": revenue_cell,
                    "revenue_per_visitor": _rate(revenue_cell, n, percent=False),
                },
            )
        )
    return _section(
        "experiment",
        mechanism="laplace",
        unit="visitor",
        columns=[
            ("visitors", "visitors"),
            ("converted", "visitors who bought"),
            ("conversion", "conversion"),
            ("revenue", "revenue (clipped)"),
            ("revenue_per_visitor", "revenue per visitor"),
        ],
        rows=rows,
        queries=[visitors_q, converted_q, revenue_q],
        notes=[
            _noise_note([visitors_q, converted_q, revenue_q], ctx.k),
            "Rates are computed from the noisy figures.",
        ],
        experiment={"id": experiment.pk, "name": experiment.name},
    )


_BUILDERS = {
    "customers": _customers,
    "weekly_active": _weekly_active,
    "categories": _categories,
    "churn_bands": _churn_bands,
    "experiment": _experiment,
}


def report_release(
    *,
    spec: ReportSpec,
    requested_by: str,
    job: Job | None = None,
    rng: np.random.Generator | None = None,
) -> AggregateRelease:
    """Make the report and store it as released (audited as ``report.release``).

    ``rng``: tests pass a seeded generator; otherwise the noise is seeded by the operating
    system. Refused (:class:`ReportError`) when the budget no longer allows it.
    """
    _budget_check(spec.sections)
    k = int(settings.RECSITE_AGGREGATE_K)
    epsilon = report_epsilon(spec.sections)
    queries = sum(LAPLACE_QUERIES[s] for s in spec.sections)
    window = report_window(days=spec.days)
    ctx = _Context(
        k=k,
        epsilon=epsilon_split(epsilon, queries) if queries else 0.0,
        window=window,
        rng=rng if rng is not None else noise_generator(),
        revenue_clip=float(settings.RECSITE_AGGREGATE_REVENUE_CLIP),
        max_categories=int(settings.RECSITE_AGGREGATE_MAX_CATEGORIES),
    )
    sections = [_BUILDERS[name](ctx, spec) for name in spec.sections]
    # Sequential composition: the queries' ε add up to at most the release's (a section with
    # nothing to release, such as the weeks before any event, leaves its share unspent; the
    # release is charged the whole ε all the same).
    spent = sum(q["epsilon"] for s in sections for q in s["queries"])
    assert spent <= epsilon * (1 + 1e-9), (spent, epsilon)
    now = timezone.now()
    document: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "released_at": now.isoformat(),
        "note": spec.note,
        "k": k,
        "epsilon": epsilon,
        "window": (
            {"days": window.days, "start": window.start.isoformat(), "end": window.end.isoformat()}
            if window
            else None
        ),
        "sections": sections,
    }
    with transaction.atomic():
        release = AggregateRelease.objects.create(
            released_at=now,
            requested_by=requested_by[:200],
            job=job,
            note=spec.note,
            sections=list(spec.sections),
            days=spec.days,
            k=k,
            epsilon=epsilon,
            document=document,
        )
        release.document = {"id": release.pk, **document}
        release.save(update_fields=["document"])
        audit_record(
            action="report.release",
            target=f"aggregate-release:{release.pk}",
            detail={"sections": list(spec.sections), "days": spec.days, "k": k,
                    "epsilon": epsilon},
            actor=Actor(requested_by[:200]),
        )  # fmt: skip
    return release


def step_release(job: Job, progress: Progress) -> Mapping[str, Any]:
    """The job's one step: make the report asked for in ``job.params``."""
    release = report_release(
        spec=ReportSpec.from_params(job.params),
        requested_by=str(job.params.get("requested_by") or "system"),
        job=job,
    )
    progress(1.0)
    return {"release": release.pk, "epsilon": release.epsilon}
