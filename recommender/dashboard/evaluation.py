"""The dashboard's evaluation page: offline metrics per configuration version over time (a chart
per protocol and the runs' table); admins start a run. See docs/tuning.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST
from plotly.subplots import make_subplots

from accounts.access import admin_view, dashboard_view
from accounts.roles import Scope
from accounts.selectors import user_scopes
from jobs.services.runs import job_start
from recommender.choices import JobKind
from recommender.dashboard.charts import figure_spec
from recommender.models import EvaluationRun
from recommender.selectors.tuning import evaluation_job_current, evaluation_run_list
from recommender.services.evaluation_runs import DEFAULT_SAMPLE
from recommender.services.recommendations import recommendation_config_active
from recommender.tasks import evaluate

CHART_METRICS = (
    ("recall@10", "Recall@10"),
    ("ndcg@10", "NDCG@10"),
    ("coverage@10", "Coverage@10"),
    ("ild@10", "Diversity (ILD@10)"),
)
METHOD_ORDER = (
    "hybrid", "hybrid_defaults", "hybrid_tuned", "ease", "item_knn", "content", "popularity",
)  # fmt: skip
_COLOURS = ("#2f6fe4", "#e4572e", "#29a36a", "#9b5de5", "#f0a202", "#6c757d", "#17becf")


def evaluation_chart(runs: Sequence[EvaluationRun], *, protocol: str) -> dict[str, Any] | None:
    """One panel per metric; one line per method, a point per run (labelled with its version)."""
    runs = sorted((r for r in runs if r.protocol == protocol), key=lambda r: (r.created_at, r.pk))
    if not runs:
        return None
    # A fixed order (PostgreSQL's jsonb does not keep the stored key order): the engine first.
    found = {m for run in runs for m in run.metrics}
    methods = [m for m in METHOD_ORDER if m in found] + sorted(found - set(METHOD_ORDER))
    fig = make_subplots(
        rows=1, cols=len(CHART_METRICS), subplot_titles=[t for _, t in CHART_METRICS]
    )
    for i, method in enumerate(methods):
        colour = _COLOURS[i % len(_COLOURS)]
        for col, (key, _) in enumerate(CHART_METRICS, start=1):
            points = [(r, r.metrics[method][key]) for r in runs if key in r.metrics.get(method, {})]
            fig.add_trace(
                go.Scatter(
                    x=[r.created_at.isoformat() for r, _ in points],
                    y=[v for _, v in points],
                    text=[f"v{r.config_version}" for r, _ in points],
                    hovertemplate=f"{method}<br>%{{text}}<br>%{{x}}<br>%{{y:.4f}}<extra></extra>",
                    mode="lines+markers",
                    name=method,
                    legendgroup=method,
                    showlegend=col == 1,
                    line={"color": colour, "width": 3 if method == "hybrid" else 1.5},
                ),
                row=1,
                col=col,
            )
    fig.update_layout(
        template="plotly_white",
        height=360,
        margin={"t": 50, "r": 20, "b": 40, "l": 50},
        legend={"orientation": "h", "y": -0.2},
        font={"family": "system-ui, sans-serif", "size": 12},
        title=f"{protocol}: offline metrics per run (hover: configuration version)",
    )
    fig.update_xaxes(tickformat="%Y-%m-%d<br>%H:%M", nticks=4)
    return figure_spec(fig)


@dashboard_view
def evaluation_page(request: HttpRequest) -> HttpResponse:
    runs = evaluation_run_list()
    protocols = list(dict.fromkeys(r.protocol for r in runs)) or ["leave-last-out"]
    charts = [
        {"id": f"chart-eval-{i}", "protocol": p, "spec": evaluation_chart(runs, protocol=p)}
        for i, p in enumerate(protocols)
    ]
    rows = [
        {
            "run": run,
            "hybrid": [run.metrics.get("hybrid", {}).get(key) for key, _ in CHART_METRICS],
        }
        for run in runs
    ]
    return render(
        request,
        "dashboard/evaluation.html",
        {
            "charts": charts,
            "rows": rows,
            "metric_labels": [label for _, label in CHART_METRICS],
            "is_admin": Scope.ADMIN in user_scopes(request.user),
            "job": evaluation_job_current(),
            "active": recommendation_config_active(),
            "sample": DEFAULT_SAMPLE,
        },
    )


@require_POST
@admin_view
def evaluation_run(request: HttpRequest) -> HttpResponse:
    job = job_start(
        kind=JobKind.EVALUATE,
        task=evaluate,
        params={"sample": DEFAULT_SAMPLE, "seed": 0},
        triggered_by=request.user,
    )
    messages.success(request, f"Evaluation job #{job.pk} queued.")
    return redirect("dashboard:evaluation")


urlpatterns: list[URLPattern] = [
    path("evaluation/", evaluation_page, name="evaluation"),
    path("evaluation/run", evaluation_run, name="evaluation-run"),
]
