"""The customer inspector: find a customer, then see why they get what they get.

A customer's page shows their event timeline, interest summary, every source's candidates with
raw and weighted scores, the final list with its reasons (the API's own list, rules included),
and the panels other apps add (interest tags, churn risk).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from accounts.access import dashboard_view
from recommender.dashboard import charts
from recommender.dashboard.forms import CustomerSearchForm
from recommender.selectors import dashboard as selectors
from recommender.selectors.catalog import customer_event_counts, customer_get
from recommender.services.inspection import customer_inspection

CUSTOMERS_PER_PAGE = 50
EVENTS_PER_PAGE = 25
FINAL_K = 10
_ORDERINGS = {
    "id": ("external_id",),
    "events": ("-n_events", "external_id"),
    "recent": (F("last_event_at").desc(nulls_last=True), "external_id"),
}


@dashboard_view
def customers(request: HttpRequest) -> HttpResponse:
    form = CustomerSearchForm(request.GET or None)
    valid = form.is_bound and form.is_valid()
    q = form.cleaned_data["q"] if valid else ""
    order = (form.cleaned_data["order"] if valid else "") or "id"
    rows = selectors.customer_filter(q=q).order_by(*_ORDERINGS[order])
    page = Paginator(rows, CUSTOMERS_PER_PAGE).get_page(request.GET.get("page"))
    params = {"q": q, "order": "" if order == "id" else order}
    query = urlencode({key: value for key, value in params.items() if value})
    return render(
        request,
        "dashboard/customers.html",
        {"form": form, "page": page, "q": q, "query": query},
    )


@dashboard_view
def customer_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    customer = customer_get(external_id=external_id)
    if customer is None:
        raise Http404(f"Customer '{external_id}' not found.")
    timeline = Paginator(selectors.customer_timeline(customer=customer), EVENTS_PER_PAGE)
    events = timeline.get_page(request.GET.get("events"))
    inspection = customer_inspection(customer=customer, k=FINAL_K)
    score_chart = charts.source_scores_chart(
        {
            f"{n}. {item.product.title[:40]}": dict(item.components)
            for n, item in enumerate(inspection.final, start=1)
        }
    )
    return render(
        request,
        "dashboard/customer_detail.html",
        {
            "customer": customer,
            "event_counts": customer_event_counts(customer=customer),
            "events": events,
            "inspection": inspection,
            "score_chart": score_chart,
            # Items a merchandising rule moved or inserted (``rule_ids``, when rules exist).
            "rules_fired": [
                (n, item)
                for n, item in enumerate(inspection.final, start=1)
                if getattr(item, "rule_ids", ())
            ],
        },
    )


urlpatterns = [
    path("customers/", customers, name="customers"),
    path("customers/<str:external_id>/", customer_detail, name="customer"),
]
