"""Tagging's dashboard pages: the review queue, the vocabulary, and two fragments for the
customer and product pages. Thin: forms in, selectors and services, template out."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.access import dashboard_view
from recommender.selectors.catalog import customer_get, product_get
from tagging.models import ProductTagStatus
from tagging.selectors import (
    customer_interest_tags,
    product_tag_list,
    suggestion_queue,
    tag_list,
    tag_precision_estimates,
)
from tagging.services import TagError, product_tags_decide, tags_import_from_column

from .forms import DecisionForm, QueueFilterForm, TagCreateForm, TagImportForm

PAGE_SIZE = 50


@dashboard_view
def review(request: HttpRequest) -> HttpResponse:
    """Suggestions by confidence, filtered by tag and status; bulk accept/reject."""
    filters = QueueFilterForm(request.GET or {"status": ProductTagStatus.PENDING})
    tag, status = None, ProductTagStatus.PENDING
    if filters.is_valid():
        tag, status = filters.cleaned_data["tag"], filters.cleaned_data["status"]
    query = urlencode({"tag": tag.name if tag else "", "status": status or ""})
    decision = DecisionForm(request.POST) if request.method == "POST" else DecisionForm()
    if request.method == "POST" and decision.is_valid():
        chosen = decision.cleaned_data["decision"]
        try:
            count = product_tags_decide(
                ids=decision.cleaned_data["ids"], status=chosen, user=request.user
            )
        except TagError as exc:
            decision.add_error("ids", exc.message)
        else:
            messages.success(request, f"{count} suggestion{'s' if count != 1 else ''} {chosen}.")
            return redirect(f"{request.path}?{query}")
    page = Paginator(suggestion_queue(status=status or None, tag=tag), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    precision = tag_precision_estimates()
    reviewed = sum(p.reviewed for p in precision)
    accepted = sum(p.accepted for p in precision)
    return render(
        request,
        "tagging/review.html",
        {
            "filters": filters,
            "decision": decision,
            "page": page,
            "query": query,
            "precision": [
                p for p in precision if p.reviewed or p.pending or p.auto_accepted or p.audited
            ],
            "auto": {
                "accepted": sum(p.auto_accepted for p in precision),
                "audited": sum(p.audited for p in precision),
                "kept": sum(p.audited_kept for p in precision),
                "target": settings.RECSITE_TAGGING_TARGET_PRECISION,
            },
            "totals": {
                "pending": sum(p.pending for p in precision),
                "reviewed": reviewed,
                "precision": accepted / reviewed if reviewed else None,
            },
        },
    )


@dashboard_view
def vocabulary(request: HttpRequest) -> HttpResponse:
    """The tags, a form to create one, a form to import them from a catalogue column."""
    create, importer = TagCreateForm(), TagImportForm()
    if request.method == "POST" and request.POST.get("action") == "create":
        create = TagCreateForm(request.POST)
        if create.is_valid():
            try:
                tag = create.save()
            except TagError:
                pass  # The form now carries the error next to its field.
            else:
                messages.success(request, f"Tag “{tag.name}” created.")
                return redirect("tagging-dashboard:vocabulary")
    elif request.method == "POST" and request.POST.get("action") == "import":
        importer = TagImportForm(request.POST)
        if importer.is_valid():
            counts = tags_import_from_column(
                column=importer.cleaned_data["column"].strip(),
                assign=importer.cleaned_data["assign"],
                user=request.user,  # type: ignore[arg-type]
            )
            messages.success(
                request,
                f"{counts.values} distinct values: {counts.tags_created} tags created, "
                f"{counts.products_tagged} product tags written.",
            )
            return redirect("tagging-dashboard:vocabulary")
    page = Paginator(tag_list(), 100).get_page(request.GET.get("page"))
    return render(
        request,
        "tagging/vocabulary.html",
        {"create": create, "importer": importer, "page": page},
    )


@dashboard_view
def customer_interests(request: HttpRequest, customer_id: str) -> HttpResponse:
    """Fragment for the customer inspector: the customer's interest tags."""
    customer = customer_get(external_id=customer_id)
    interests = customer_interest_tags(customer=customer) if customer else []
    return render(
        request,
        "tagging/fragments/customer_interests.html",
        {"customer_id": customer_id, "found": customer is not None, "interests": interests},
    )


@dashboard_view
def product_tags(request: HttpRequest, product_id: str) -> HttpResponse:
    """Fragment for the product page: the product's tags and their status."""
    product = product_get(external_id=product_id)
    rows = list(product_tag_list(product=product)) if product else []
    return render(
        request,
        "tagging/fragments/product_tags.html",
        {"product_id": product_id, "found": product is not None, "rows": rows},
    )
