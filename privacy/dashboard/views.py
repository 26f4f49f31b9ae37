"""The shareable reports pages (admins): the releases with the budget they spent, a form to
release one (a job, watched with a progress bar), a report as released, and its CSV."""

from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import admin_view
from jobs.selectors import job_watched
from privacy import selectors
from privacy.dashboard.forms import ReportForm
from privacy.models import AggregateRelease
from privacy.services import reports
from privacy.tasks import report_start
from recsite.api.lookups import MAX_PK

PAGE_SIZE = 50


def _release(pk: int) -> AggregateRelease:
    release = selectors.aggregate_release_get(pk=pk) if 1 <= pk <= MAX_PK else None
    if release is None:
        raise Http404(f"Report {pk} not found.")
    return release


@admin_view
@require_http_methods(["GET", "POST"])
def report_list(request: HttpRequest) -> HttpResponse:
    form = ReportForm(
        request.POST if request.method == "POST" else None,
        experiments=selectors.experiment_choices(),
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                spec = reports.report_spec_check(
                    sections=data["sections"],
                    days=data["days"],
                    experiment=data["experiment"],
                    note=data["note"],
                )
            except reports.ReportError as exc:
                form.add_error(ReportForm.FIELDS.get(exc.field), exc.message)
            else:
                job = report_start(spec=spec, triggered_by=request.user)
                pk = job.pk
                messages.success(request, f"The report is being made as job #{pk}.")
                return redirect(f"{reverse('privacy-dashboard:reports')}?job={pk}")
        status = 400
    watched = job_watched(param=request.GET.get("job", ""))
    return render(
        request,
        "privacy/reports.html",
        {
            "form": form,
            "watched": watched,
            "budget": reports.report_budget(),
            "epsilon": reports.report_epsilon(list(reports.SECTIONS)),
            "k": settings.RECSITE_AGGREGATE_K,
            # The releases fragment's page: its "next" links lead here, with ?page=.
            "page_number": request.GET.get("page", "")
            if request.GET.get("page", "").isdigit()
            else "",
        },
        status=status,
    )


@admin_view
@require_GET
def report_history(request: HttpRequest) -> HttpResponse:
    """The releases table (a fragment the page reloads when a report job ends)."""
    page = Paginator(selectors.aggregate_release_list(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "privacy/partials/report_history.html",
        {"page": page, "budget": reports.report_budget()},
    )


def _table(section: dict[str, Any]) -> dict[str, Any]:
    """A section's rows as the template walks them: the group, then each column's text."""
    keys = [c["key"] for c in section["columns"]]
    rows = [(row["group"], [row["values"][key]["text"] for key in keys]) for row in section["rows"]]
    total = section.get("total")
    return {
        **section,
        "table": rows,
        "total_row": [total[key]["text"] for key in keys] if total else None,
    }


@admin_view
@require_GET
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release(pk)
    document = release.document
    return render(
        request,
        "privacy/report_detail.html",
        {
            "release": release,
            "document": document,
            "sections": [_table(s) for s in document.get("sections", [])],
        },
    )


@admin_view
@require_GET
def report_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The report as one CSV (section, group, measure, value, shown): what a shop shares. A
    withheld figure has no value, only what the report shows in its place."""
    release = _release(pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="recsite-report-{release.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["section", "group", "measure", "value", "shown"])
    for section in release.document.get("sections", []):
        keys = [c["key"] for c in section["columns"]]
        for row in section["rows"]:
            for key in keys:
                cell = row["values"][key]
                value = "" if cell["value"] is None else cell["value"]
                writer.writerow([section["name"], row["group"], key, value, cell["text"]])
        for key, cell in (section.get("total") or {}).items():
            value = "" if cell["value"] is None else cell["value"]
            writer.writerow([section["name"], "total", key, value, cell["text"]])
    return response


urlpatterns = [
    path("reports/", report_list, name="reports"),
    path("reports/history", report_history, name="report-history"),
    path("reports/<int:pk>/", report_detail, name="report"),
    path("reports/<int:pk>/csv", report_csv, name="report-csv"),
]
