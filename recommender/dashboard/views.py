"""Dashboard pages: overview, products, jobs, and plotly.js served by the app itself.

Views are thin: a form parses the query, selectors read, services write, the template renders.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import plotly
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import admin_view, dashboard_view
from accounts.selectors import user_role
from jobs.models import Job
from jobs.selectors import job_watched
from jobs.services.runs import job_start
from recommender.choices import JobKind
from recommender.dashboard import charts
from recommender.dashboard.forms import JobTriggerForm, ProductFilterForm, SemanticSearchForm
from recommender.selectors import dashboard as selectors
from recommender.selectors.catalog import product_get
from recommender.services.inspection import product_similar_lists
from recommender.services.search import product_search
from recommender.tasks import reindex_signature, train_signature

PRODUCTS_PER_PAGE = 50
SEARCH_RESULTS = 20
SIMILAR_K = 10
JOB_HISTORY = 50


# plotly.js ----------------------------------------------------------------------------------


@cache
def _plotly_bundle() -> tuple[bytes, bytes, str]:
    """plotly.min.js from the installed plotly package (raw, gzipped, ETag), read once."""
    raw = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    return raw, gzip.compress(raw, compresslevel=6), hashlib.sha256(raw).hexdigest()[:16]


@require_GET
def plotly_js(request: HttpRequest) -> HttpResponse:
    """The plotly.js bundle of the installed plotly package: no CDN (offline machines and
    firewalled shops). Its URL carries plotly's version, so it is cached for a year."""
    raw, gzipped, etag = _plotly_bundle()
    if request.headers.get("If-None-Match") == f'"{etag}"':
        response = HttpResponse(status=304)
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(gzipped, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(raw, content_type="text/javascript; charset=utf-8")
    response["ETag"] = f'"{etag}"'
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Vary"] = "Accept-Encoding"
    return response


# Overview -----------------------------------------------------------------------------------


@dashboard_view
def overview(request: HttpRequest) -> HttpResponse:
    stats = selectors.catalogue_stats()
    series = selectors.overview_series(stats=stats)
    index_build = selectors.index_build_current()
    engine_build = selectors.engine_build_current()
    now = timezone.now()
    context: dict[str, Any] = {
        "stats": stats,
        "index_build": index_build,
        "index_age": selectors.build_age(index_build.finished_at if index_build else None, now=now),
        "engine_build": engine_build,
        "engine_age": selectors.build_age(
            engine_build.finished_at if engine_build else None, now=now
        ),
        "coverage": selectors.recommendation_coverage(active_products=stats.active_products),
        "jobs": job_rows(selectors.jobs_recent()),
        "events_chart": charts.events_per_day_chart(series.events_per_day),
        "customers_chart": charts.active_customers_chart(
            series.active_per_day, series.active_per_week
        ),
        "embedding_chart": charts.coverage_chart(
            embedded=stats.embedded_active, active=stats.active_products
        ),
        "chart_days": selectors.CHART_DAYS,
        "chart_weeks": selectors.CHART_WEEKS,
        "role": user_role(request.user),
    }
    return render(request, "dashboard/overview.html", context)


# Products -----------------------------------------------------------------------------------


@dashboard_view
def products(request: HttpRequest) -> HttpResponse:
    form = ProductFilterForm(
        request.GET or None,
        categories=selectors.product_categories(),
        brands=selectors.product_brands(),
        choices_limit=selectors.FILTER_CHOICES_LIMIT,
        value_exists=lambda field, value: selectors.product_value_exists(field=field, value=value),
    )
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = form.filters()
    # An invalid filter (an unknown category) shows its error and no list: a list ignoring the
    # filter would look like its answer.
    page = None
    if not form.is_bound or form.is_valid():
        paginator = Paginator(selectors.product_filter(**filters), PRODUCTS_PER_PAGE)
        page = paginator.get_page(request.GET.get("page"))
    search_form = SemanticSearchForm(
        {"search": request.GET["search"]} if request.GET.get("search") else None
    )
    results = None
    if search_form.is_bound and search_form.is_valid():
        results = product_search(query=search_form.cleaned_data["search"], k=SEARCH_RESULTS)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/products.html",
        {
            "form": form,
            "page": page,
            "search_form": search_form,
            "results": results,
            "query": query.urlencode(),
        },
    )


@dashboard_view
def product_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    product = product_get(external_id=external_id)
    if product is None:
        raise Http404(f"Product '{external_id}' not found.")
    similar = product_similar_lists(product=product, k=SIMILAR_K)
    return render(
        request,
        "dashboard/product_detail.html",
        {
            "product": product,
            "embedding": selectors.product_embedding_get(product=product),
            "event_counts": selectors.product_event_counts(product=product),
            "similar": similar,
        },
    )


# Jobs ---------------------------------------------------------------------------------------


def _start_job(kind: str, request: HttpRequest) -> int:
    """Queue a job the way the API does (recommender/api: jobs/reindex, jobs/train)."""
    task = reindex_signature if kind == JobKind.REINDEX else train_signature
    return job_start(kind=JobKind(kind), task=task, triggered_by=request.user).pk


@admin_view
@require_http_methods(["GET", "POST"])
def jobs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = JobTriggerForm(request.POST)
        if form.is_valid():
            kind = form.cleaned_data["kind"]
            pk = _start_job(kind, request)
            messages.success(request, f"{JobKind(kind).label} started as job #{pk}.")
            return redirect(f"{reverse('dashboard:jobs')}?job={pk}")
    else:
        form = JobTriggerForm()
    watched = job_watched(param=request.GET.get("job", ""))
    if watched is None:
        watched = selectors.job_running()
    return render(
        request,
        "dashboard/jobs.html",
        {"form": form, "watched": watched},
    )


def counts_text(counts: Mapping[str, Any], prefix: str = "") -> str:
    """A job's counts on one line: ``{"embed": {"embedded": 8}}`` -> ``embed embedded: 8``.

    Keys in alphabetical order: PostgreSQL's jsonb does not keep the order they were written in.
    """
    parts = []
    for key, value in sorted(counts.items()):
        label = f"{prefix}{key}"
        if isinstance(value, Mapping):
            parts.append(counts_text(value, prefix=f"{label} "))
        else:
            parts.append(f"{label}: {value}")
    return ", ".join(part for part in parts if part)


def job_rows(jobs: list[Job]) -> list[tuple[Job, str]]:
    return [(job, counts_text(job.counts)) for job in jobs]


@admin_view
@require_GET
def jobs_history(request: HttpRequest) -> HttpResponse:
    """The job history table (a fragment the jobs page reloads when a job ends)."""
    return render(
        request,
        "dashboard/partials/job_history.html",
        {"rows": job_rows(selectors.jobs_recent(limit=JOB_HISTORY))},
    )


urlpatterns = [
    path(f"plotly-{plotly.__version__}.min.js", plotly_js, name="plotly-js"),
    path("", overview, name="overview"),
    path("products/", products, name="products"),
    path("products/<str:external_id>/", product_detail, name="product"),
    path("jobs/", jobs, name="jobs"),
    path("jobs/history/", jobs_history, name="jobs-history"),
]
