"""The churn page, its "Score now" action, the customer-risk fragment and win-back lists."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import admin_view, dashboard_view
from accounts.roles import Scope
from accounts.selectors import user_scopes
from churn import selectors, services
from churn.dashboard import charts
from churn.dashboard.forms import AtRiskFilterForm, ScoreNowForm
from churn.models import ChurnJobKind
from churn.tasks import churn_job_run
from jobs.selectors import job_watched
from jobs.services.runs import job_start
from recommender.selectors.catalog import customer_get

HISTORY_POINTS = 30


@dashboard_view
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    form = AtRiskFilterForm(request.GET or None)
    at_risk = []
    if not form.is_bound:
        at_risk = selectors.churn_at_risk_list(limit=50)
    elif form.is_valid():  # Bad values are shown next to their field, and no table.
        at_risk = selectors.churn_at_risk_list(
            band=form.cleaned_data["band"] or None, limit=form.cleaned_data["limit"] or 50
        )
    build = selectors.churn_model_build_latest()
    backtest = (build.metrics.get("backtest") or {}) if build else {}
    watched = job_watched(param=request.GET.get("job", ""))
    return render(
        request,
        "churn/index.html",
        {
            "form": form,
            "score_form": ScoreNowForm(),
            "run": selectors.churn_run_latest(),
            "build": build,
            "backtest": backtest,
            "at_risk": at_risk,
            "risk_chart": charts.risk_over_time_chart(selectors.churn_distribution_history()),
            "roc_chart": charts.roc_chart(backtest),
            "calibration_chart": charts.calibration_chart(backtest),
            "watched": watched,
            "is_admin": Scope.ADMIN in user_scopes(request.user),
        },
    )


@admin_view
@require_POST
def score_now(request: HttpRequest) -> HttpResponse:
    form = ScoreNowForm(request.POST)
    retrain = form.is_valid() and form.cleaned_data["retrain"]
    job = job_start(
        kind=ChurnJobKind.CHURN_SCORE,
        task=churn_job_run,
        params=services.churn_job_params(retrain=retrain),
        triggered_by=request.user,
    )
    messages.success(request, f"Churn scoring started as job #{job.pk}.")
    return redirect(f"{reverse('churn-dashboard:index')}?job={job.pk}")


@dashboard_view
@require_GET
def customer_risk(request: HttpRequest, external_id: str) -> HttpResponse:
    """Fragment for the customer inspector: score, band, drivers, history sparkline.

    Always 200 (the page script shows the HTML as is), with a message when there is nothing.
    """
    customer = customer_get(external_id=external_id)
    history = (
        selectors.churn_score_history(customer=customer, limit=HISTORY_POINTS) if customer else []
    )
    return render(
        request,
        "churn/fragments/customer_risk.html",
        {
            "customer": customer,
            "external_id": external_id,
            "score": history[-1] if history else None,
            "sparkline": charts.sparkline(history),
        },
    )


@dashboard_view
@require_GET
def win_back(request: HttpRequest, external_id: str) -> HttpResponse:
    customer = customer_get(external_id=external_id)
    result = services.winback_list(customer=customer, k=10) if customer else None
    return render(
        request,
        "churn/win_back.html",
        {"external_id": external_id, "customer": customer, "result": result},
        status=200 if customer else 404,
    )


urlpatterns = [
    path("", index, name="index"),
    path("score", score_now, name="score"),
    path("customers/<str:external_id>/risk", customer_risk, name="customer-risk"),
    path("customers/<str:external_id>/win-back/", win_back, name="win-back"),
]
