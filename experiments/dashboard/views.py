"""The experiments pages: the list, an experiment's results (table, chart, decision, SRM,
attribution), and the admins' actions (start, stop, refresh results, promote the winner)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import admin_view, dashboard_view
from accounts.roles import Scope
from accounts.selectors import user_scopes
from experiments import selectors, services, simulation
from experiments.dashboard import charts
from experiments.dashboard.forms import ExperimentCreateForm, ReplayForm
from experiments.models import Experiment, ExperimentJobKind, Metric
from experiments.tasks import experiment_replay_run, experiment_results_run
from jobs.services.runs import job_start


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def _cells(m: selectors.MetricResult) -> dict[str, str]:
    """A metric as the table shows it: value [95% interval], and the lift against control."""
    e, c = m.estimate, m.comparison
    value = _number(e.value)
    if e.low is not None and e.high is not None:
        value += f" [{_number(e.low)}, {_number(e.high)}]"
    lift = ""
    if c is not None and c.lift is not None and c.low is not None and c.high is not None:
        lift = f"{c.lift * 100:+.1f}% [{c.low * 100:.1f}, {c.high * 100:.1f}]"
        if c.p_value is not None:
            lift += f" p={c.p_value:.2g}"
    elif c is not None:
        lift = "-"
    return {"value": value, "lift": lift, "significant": "yes" if c and c.significant else ""}


def _experiment(pk: int) -> Experiment:
    experiment = selectors.experiment_get(pk=pk)
    if experiment is None:
        raise Http404(f"Experiment {pk} not found.")
    return experiment


@dashboard_view
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return _index(request, ExperimentCreateForm())


def _index(request: HttpRequest, form: ExperimentCreateForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "experiments/index.html",
        {
            "experiments": list(selectors.experiment_list()[:200]),
            "form": form,
            "is_admin": Scope.ADMIN in user_scopes(request.user),
        },
        status=status,
    )


@admin_view
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """A draft with a control and one treatment; a refused value is shown next to its field."""
    form = ExperimentCreateForm(request.POST)
    if not form.is_valid():
        return _index(request, form, status=400)
    data = form.cleaned_data
    share = data["treatment_share"]
    spec = services.ExperimentSpec(
        name=data["name"],
        lists=list(data["lists"]),
        variants=[
            services.VariantSpec(data["control_name"], 100 - share, data["control_config_version"]),
            services.VariantSpec(
                data["treatment_name"], share, data["treatment_config_version"],
                baseline=data["treatment_baseline"] or "",
            ),
        ],
        starts_at=timezone.now(),
        primary_metric=data["primary_metric"],
        horizon_visitors=data["horizon_visitors"],
    )  # fmt: skip
    try:
        experiment = services.experiment_create(spec=spec, created_by=request.user)
    except services.ExperimentError as exc:
        form.add_error(ExperimentCreateForm.FIELDS.get(exc.field), exc.message)
        return _index(request, form, status=400)
    messages.success(request, f"Draft '{experiment.name}' created; start it when ready.")
    return redirect("experiments-dashboard:detail", pk=experiment.pk)


@dashboard_view
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk, ReplayForm())


def _detail(
    request: HttpRequest, pk: int, replay_form: ReplayForm, status: int = 200
) -> HttpResponse:
    experiment = _experiment(pk)
    results = selectors.experiment_results(experiment=experiment)
    names = [v.name for v in results.variants]
    chart_metrics = [experiment.primary_metric] + [
        m for m in (Metric.CTR, Metric.CONVERSION, Metric.REVENUE_PER_MILLE)
        if m != experiment.primary_metric
    ]  # fmt: skip
    chart_list = []
    for metric in chart_metrics:
        spec = charts.metric_by_day_chart(results.daily, metric=metric, variants=names)
        if spec is not None:
            chart_list.append((f"chart-experiment-{metric}", spec))
    rows = [
        {"variant": v, "metrics": [_cells(v.metrics[m]) for m in selectors.METRIC_COLUMNS]}
        for v in results.variants
    ]
    return render(
        request,
        "experiments/detail.html",
        {
            "experiment": experiment,
            "results": results,
            "rows": rows,
            "metric_labels": [Metric(m).label for m in selectors.METRIC_COLUMNS],
            "primary_label": Metric(experiment.primary_metric).label,
            "charts": chart_list,
            "promotable": [v for v in experiment.variants.all() if v.config_version is not None],
            "is_admin": Scope.ADMIN in user_scopes(request.user),
            "replay_form": replay_form,
            "replay_job": (
                selectors.experiment_replay_job(experiment=experiment)
                if experiment.replay is not None
                else None
            ),
            "replays": (
                selectors.experiment_replays(experiment=experiment)
                if experiment.replay is None
                else []
            ),
        },
        status=status,
    )


def _act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    experiment = _experiment(pk)
    try:
        if action == "start":
            services.experiment_start(experiment=experiment)
            messages.success(request, f"Experiment '{experiment.name}' is running.")
        elif action == "stop":
            services.experiment_stop(experiment=experiment)
            messages.success(request, f"Experiment '{experiment.name}' is stopped.")
        elif action == "copy":
            copy = services.experiment_copy(experiment=experiment, created_by=request.user)
            messages.success(request, f"Copied as the draft '{copy.name}'.")
            return redirect("experiments-dashboard:detail", pk=copy.pk)
        elif action == "promote":
            user = request.user if isinstance(request.user, User) else None
            row = services.experiment_promote(
                experiment=experiment, variant=request.POST.get("variant", ""), created_by=user
            )
            messages.success(request, f"Configuration version {row.version} is now active.")
    except services.ExperimentError as exc:
        messages.error(request, str(exc))
    return redirect("experiments-dashboard:detail", pk=pk)


@admin_view
@require_POST
def start(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "start")


@admin_view
@require_POST
def stop(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "stop")


@admin_view
@require_POST
def copy(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "copy")


@admin_view
@require_POST
def promote(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "promote")


@admin_view
@require_POST
def replay(request: HttpRequest, pk: int) -> HttpResponse:
    """Replay the experiment on past traffic: a new replay experiment and its job; a refused
    value is shown next to its field."""
    experiment = _experiment(pk)
    form = ReplayForm(request.POST)
    if not form.is_valid():
        return _detail(request, pk, form, status=400)
    data = form.cleaned_data
    plan = simulation.ReplayPlan(since=data["since"], days=data["days"], k=data["k"])
    try:
        made = simulation.experiment_replay_create(
            plan=plan, source=experiment, created_by=request.user
        )
    except services.ExperimentError as exc:
        form.add_error(ReplayForm.FIELDS.get(exc.field), exc.message)
        return _detail(request, pk, form, status=400)
    job = job_start(
        kind=ExperimentJobKind.EXPERIMENT_REPLAY,
        task=experiment_replay_run,
        params={"experiment": made.pk},
        triggered_by=request.user,
    )
    messages.success(request, f"Replaying past traffic as job #{job.pk}; the results appear here.")
    return redirect("experiments-dashboard:detail", pk=made.pk)


@admin_view
@require_POST
def refresh(request: HttpRequest, pk: int) -> HttpResponse:
    experiment = _experiment(pk)
    try:
        services.experiment_refresh_check(experiment=experiment)
    except services.ExperimentError as exc:
        messages.error(request, exc.message)
        return redirect("experiments-dashboard:detail", pk=pk)
    job = job_start(
        kind=ExperimentJobKind.EXPERIMENT_RESULTS,
        task=experiment_results_run,
        params={"experiment": experiment.pk},
        triggered_by=request.user,
    )
    messages.success(request, f"Results are being recomputed as job #{job.pk}.")
    return redirect(reverse("experiments-dashboard:detail", kwargs={"pk": pk}))


urlpatterns = [
    path("", index, name="index"),
    path("create", create, name="create"),
    path("<int:pk>/", detail, name="detail"),
    path("<int:pk>/start", start, name="start"),
    path("<int:pk>/stop", stop, name="stop"),
    path("<int:pk>/copy", copy, name="copy"),
    path("<int:pk>/promote", promote, name="promote"),
    path("<int:pk>/refresh", refresh, name="refresh"),
    path("<int:pk>/replay", replay, name="replay"),
]
