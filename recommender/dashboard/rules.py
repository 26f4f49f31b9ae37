"""Dashboard pages for merchandising rules: the list, create, edit (with a preview of the
draft on any kind of list before saving) and delete.

Merchandisers and admins may change rules. The form only parses the input; what a rule means
(a boost above 1, a pin on known products, an end after the start) is checked by the service,
whose errors name the field, so the page shows each message next to its field and saves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils import timezone

from accounts.access import dashboard_view
from recommender.models import (
    Customer,
    MerchandisingRule,
    Product,
    RecommendationKind,
    RuleAction,
    RuleTarget,
)
from recommender.selectors.catalog import customer_get, product_get
from recommender.selectors.merchandising import (
    merchandising_rule_get,
    merchandising_rule_list,
    merchandising_rules_active,
    product_ids_matching,
)
from recommender.services.merchandising import (
    merchandising_rule_create,
    merchandising_rule_delete,
    merchandising_rule_update,
    merchandising_rules_compile,
)
from recommender.services.merchandising_preview import (
    NEEDS_CUSTOMER,
    NEEDS_PRODUCT,
    RulesPreview,
    merchandising_rules_preview,
)
from recommender.services.merchandising_validation import (
    MerchandisingRuleFields,
    MerchandisingRuleInvalid,
    merchandising_rule_validate,
)
from recommender.services.recommendations import EngineNotReady

_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class _DateTimeLocal(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class RuleForm(forms.Form):
    """A merchandising rule as typed by a person; the service validates what it means."""

    name = forms.CharField(max_length=200, help_text="Shown in the reasons, e.g. “Summer candles”.")
    action = forms.ChoiceField(choices=RuleAction.choices)
    target_kind = forms.ChoiceField(label="Target", choices=RuleTarget.choices)
    target_values = forms.CharField(
        label="Target values",
        required=False,
        max_length=20_000,
        help_text="Comma-separated product ids, categories, brands or tags "
        "(empty for a price range or out of stock).",
    )
    price_min = forms.DecimalField(
        label="Minimum price", required=False, max_digits=12, decimal_places=2
    )
    price_max = forms.DecimalField(
        label="Maximum price", required=False, max_digits=12, decimal_places=2
    )
    factor = forms.FloatField(
        required=False, help_text="Boost: greater than 1 (e.g. 1.5). Bury: between 0 and 1."
    )
    position = forms.IntegerField(required=False, help_text="Pin: 1 is the first position.")
    share = forms.FloatField(
        required=False, help_text="Promotion: share of the positions reserved, e.g. 0.2."
    )
    priority = forms.IntegerField(initial=0, help_text="Higher runs first.")
    starts_at = forms.DateTimeField(
        label="Starts", required=False, widget=_DateTimeLocal(), input_formats=_DATETIME_FORMATS
    )
    ends_at = forms.DateTimeField(
        label="Ends", required=False, widget=_DateTimeLocal(), input_formats=_DATETIME_FORMATS
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    surfaces = forms.MultipleChoiceField(
        label="Applies to",
        choices=RecommendationKind.choices,
        required=False,
        initial=list(RecommendationKind.values),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"}),
        help_text="The lists the rule changes: a homepage pin rarely belongs in “similar "
        "products”; an out-of-stock filter belongs everywhere.",
    )
    preview_list = forms.ChoiceField(
        label="Preview on",
        choices=RecommendationKind.choices,
        initial=RecommendationKind.CUSTOMER,
        required=False,
    )
    preview_customer = forms.CharField(
        label="Customer",
        required=False,
        max_length=128,
        help_text="A customer id, for a customer's list.",
    )
    preview_product = forms.CharField(
        label="Product",
        required=False,
        max_length=128,
        help_text="A product id, for a session that viewed it, its similar or bought-together "
        "products.",
    )

    PREVIEW_FIELDS = ("preview_list", "preview_customer", "preview_product")

    def rule_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in self.PREVIEW_FIELDS]

    @classmethod
    def initial_from(cls, rule: MerchandisingRule) -> dict[str, Any]:
        return {
            "name": rule.name,
            "action": rule.action,
            "target_kind": rule.target_kind,
            "target_values": ", ".join(rule.target_values or []),
            "price_min": rule.price_min,
            "price_max": rule.price_max,
            "factor": rule.factor,
            "position": rule.position,
            "share": rule.share,
            "priority": rule.priority,
            "surfaces": list(rule.surfaces or []),
            "starts_at": _local(rule.starts_at),
            "ends_at": _local(rule.ends_at),
            "is_active": rule.is_active,
        }

    def save(
        self, *, rule: MerchandisingRule | None = None, user: User | None = None
    ) -> MerchandisingRule | None:
        """Create or update through the service (call after ``is_valid()``); on a refused
        rule, put each message on its field and return None."""
        try:
            if rule is None:
                return merchandising_rule_create(data=self.cleaned_data, created_by=user)
            return merchandising_rule_update(rule=rule, data=self.cleaned_data)
        except MerchandisingRuleInvalid as exc:
            for field, message in exc.errors.items():
                self.add_error(field if field in self.fields else None, message)
            return None


def _preview_subject(form: RuleForm, surface: RecommendationKind) -> dict[str, Any] | None:
    """The customer or product the ``surface`` list is previewed for (``{}`` for trending), or
    None with the error put on the field."""
    if surface in NEEDS_CUSTOMER:
        field, noun = "preview_customer", "customer"
    elif surface in NEEDS_PRODUCT:
        field, noun = "preview_product", "product"
    else:
        return {}
    wanted = form.cleaned_data[field].strip()
    found: Customer | Product | None = None
    if not wanted:
        form.add_error(field, f"give a {noun} id to preview the rule on")
    else:
        get = customer_get if noun == "customer" else product_get
        found = get(external_id=wanted)
        if found is None:
            form.add_error(field, f"unknown {noun}: {wanted}")
    return None if found is None else {noun: found}


def _preview(form: RuleForm, rule: MerchandisingRule | None) -> RulesPreview | str | None:
    """The draft rule's effect on the chosen list (call after ``is_valid()``): a preview, a
    message when there is nothing to preview on, or None with the errors put on the form."""
    fields: MerchandisingRuleFields | None = None
    try:
        fields = merchandising_rule_validate(data=form.cleaned_data)
    except MerchandisingRuleInvalid as exc:
        for field, message in exc.errors.items():
            form.add_error(field if field in form.fields else None, message)
    surface = RecommendationKind(form.cleaned_data["preview_list"] or RecommendationKind.CUSTOMER)
    subject = _preview_subject(form, surface)
    if fields is None or subject is None:
        return None
    if surface not in fields.surfaces:
        return (
            f"This rule does not apply to “{surface.label}” lists, so that list cannot show it; "
            "tick it under “Applies to” or preview another list."
        )
    # The draft shows its effect whatever its own window; the saved rules as they are now.
    draft = MerchandisingRule(**{**fields.as_dict(), "starts_at": None, "ends_at": None})
    now = timezone.now()
    others = merchandising_rules_active(at=now)
    if rule is not None:
        draft.pk = rule.pk
        others = others.exclude(pk=rule.pk)
    compiled = merchandising_rules_compile(rules=[*others, draft], at=now)
    try:
        return merchandising_rules_preview(rules=compiled, surface=surface, **subject)
    except EngineNotReady as exc:
        return str(exc)


def _form_page(
    request: HttpRequest, form: RuleForm, rule: MerchandisingRule | None
) -> HttpResponse:
    preview = _preview(form, rule) if form.is_bound and form.is_valid() else None
    context = {
        "form": form,
        "rule": rule,
        "preview": preview if isinstance(preview, RulesPreview) else None,
        "preview_message": preview if isinstance(preview, str) else "",
    }
    return render(request, "dashboard/rules_form.html", context)


def _local(value: datetime | None) -> datetime | None:
    return timezone.localtime(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class RuleRow:
    rule: MerchandisingRule
    status: str  # "active", "scheduled", "ended" or "off"
    parameter: str
    target: str
    matches: int
    surfaces: str


def _status(rule: MerchandisingRule, now: datetime) -> str:
    if not rule.is_active:
        return "off"
    if rule.ends_at is not None and rule.ends_at <= now:
        return "ended"
    if rule.starts_at is not None and rule.starts_at > now:
        return "scheduled"
    return "active"


def _parameter(rule: MerchandisingRule) -> str:
    if rule.action in (RuleAction.BOOST, RuleAction.BURY):
        return f"\u00d7{rule.factor:g}" if rule.factor is not None else ""
    if rule.action == RuleAction.PIN:
        return f"position {rule.position}"
    if rule.action == RuleAction.PROMOTE:
        return f"{(rule.share or 0) * 100:g}% of positions"
    return ""


def _surfaces(rule: MerchandisingRule) -> str:
    chosen = list(rule.surfaces or [])
    if set(chosen) >= set(RecommendationKind.values):
        return "all lists"
    return ", ".join(RecommendationKind(value).label for value in chosen)


def _target(rule: MerchandisingRule) -> str:
    kind = RuleTarget(rule.target_kind).label.split(" (")[0]
    if rule.target_kind == RuleTarget.PRICE_RANGE:
        low = rule.price_min if rule.price_min is not None else "0"
        high = rule.price_max if rule.price_max is not None else "∞"
        return f"price {low} to {high}"
    if rule.target_kind == RuleTarget.OUT_OF_STOCK:
        return "out of stock"
    return f"{kind}: {', '.join(rule.target_values or [])}"


def _rule_or_404(pk: int) -> MerchandisingRule:
    rule = merchandising_rule_get(pk=pk)
    if rule is None:
        raise Http404(f"Merchandising rule {pk} not found.")
    return rule


@dashboard_view
def rules(request: HttpRequest) -> HttpResponse:
    """Every rule, highest priority first, with its state now and how many products it hits."""
    now = timezone.now()
    rows = [
        RuleRow(
            rule=rule,
            status=_status(rule, now),
            parameter=_parameter(rule),
            target=_target(rule),
            matches=len(
                product_ids_matching(
                    target_kind=rule.target_kind,
                    values=list(rule.target_values or []),
                    price_min=rule.price_min,
                    price_max=rule.price_max,
                )
            ),
            surfaces=_surfaces(rule),
        )
        for rule in merchandising_rule_list()
    ]
    return render(request, "dashboard/rules.html", {"rows": rows})


@dashboard_view
def rule_create(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST or None)
    if "preview" in request.POST:
        return _form_page(request, form, None)
    if request.method == "POST" and form.is_valid():
        rule = form.save(user=cast(User, request.user))
        if rule is not None:
            messages.success(request, f"Rule “{rule.name}” created.")
            return redirect("dashboard:rules")
    return render(request, "dashboard/rules_form.html", {"form": form, "rule": None})


@dashboard_view
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_or_404(pk)
    form = RuleForm(request.POST or None, initial=RuleForm.initial_from(rule))
    if "preview" in request.POST:
        return _form_page(request, form, rule)
    if request.method == "POST" and form.is_valid():
        saved = form.save(rule=rule)
        if saved is not None:
            messages.success(request, f"Rule “{saved.name}” saved.")
            return redirect("dashboard:rules")
    return render(request, "dashboard/rules_form.html", {"form": form, "rule": rule})


@dashboard_view
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_or_404(pk)
    if request.method == "POST":
        merchandising_rule_delete(rule=rule)
        messages.success(request, f"Rule “{rule.name}” deleted.")
        return redirect("dashboard:rules")
    return render(request, "dashboard/rules_confirm_delete.html", {"rule": rule})


urlpatterns: list[URLPattern] = [
    path("rules/", rules, name="rules"),
    path("rules/new/", rule_create, name="rule-create"),
    path("rules/<int:pk>/edit/", rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete/", rule_delete, name="rule-delete"),
]
