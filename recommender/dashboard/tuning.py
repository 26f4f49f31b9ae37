"""Dashboard pages for tuning the engine (live preview, save, version history, restore); the
offline evaluation's page is ``evaluation``.

The form only parses numbers; what a configuration may hold is checked by
:class:`EngineConfig` itself, whose errors name the field, so the page shows each message next to
its field and saves nothing. See docs/tuning.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from accounts.access import dashboard_view
from recommender.evaluation.blend_search import SEARCHED
from recommender.evaluation.blend_tuning import TUNED_SOURCES
from recommender.ml.engine import MAX_EXPOSURE_SLOTS, ConfigError, EngineConfig, HybridEngine
from recommender.ml.engine.config import (
    MAX_ROTATION_HOURS,
    MAX_ROTATION_IMPRESSIONS,
    ROTATION_DEFAULTS,
    ROTATION_LISTS,
)
from recommender.models import Customer, RecommendationConfig
from recommender.ranking.types import SOURCES
from recommender.selectors.recommendations import recommendation_config_list
from recommender.selectors.tuning import (
    customers_by_external_ids,
    customers_most_active,
)
from recommender.services.recommendations import (
    EngineNotReady,
    recommendation_config_active,
    recommendation_config_restore,
    recommendation_config_save,
    serving_engine,
)
from recommender.services.tuning import tuning_preview

DEFAULT_CUSTOMERS = 3
MAX_CUSTOMERS = 5
HISTORY_ROWS = 10

SOURCE_HELP = {
    "semantic": "products close in meaning to what the customer touched",
    "collaborative": "what customers with similar histories bought (EASE / item-kNN)",
    "session": "products related to what the visitor looks at now",
    "popularity": "best sellers, time-decayed",
    "trending": "products selling faster this week than usual",
    "new_arrivals": "recent products without events yet",
    "social": "what the people the customer follows or trusts (and theirs) touched",
    "exposure": "products nobody has touched yet, by their exposure score; usually 0: the "
    "exposure slots below place them",
    "sequential": "what customers buy next after the customer's latest products (the "
    "sequential model; served when it helped on validation)",
}
# Request-time fields in "More settings"; fit-time fields have their own box.
_MORE = (
    "n_interests",
    "candidates_per_source",
    "new_arrival_days",
    "cold_collaborative",
    "social_hop_decay",
    "social_half_life_days",
    "social_tie_floor",
)
_FIT_TIME = (
    "popularity_half_life_days",
    "trending_window_days",
    "ease_lambda",
    "knn_neighbours",
    "cooccurrence_event_types",
)


def _number(step: str, *, slider: str | None = None) -> forms.NumberInput:
    attrs = {"step": step}
    if slider:
        attrs["data-slider"] = slider  # min:max:step of the range tuning.js adds beside it
    return forms.NumberInput(attrs=attrs)


ROTATION_LABELS = {
    "customer": "Customer lists",
    "session": "Session lists",
    "similar": "Similar products",
    "bought_together": "Bought together",
    "trending": "Trending",
}
# Rotation inputs: (form field suffix, the rotation setting).
_ROTATION_INPUTS = (("rate", "rate"), ("hours", "hours"), ("min", "min_impressions"))


def _rotation_field(kind: str, setting: str) -> str:
    short = next(suffix for suffix, name in _ROTATION_INPUTS if name == setting)
    return f"rot_{kind}_{short}"


LOCK_LABELS = {
    **{f"source_weights.{s}": f"{s} weight" for s in TUNED_SOURCES},
    "half_life_days": "decay half-life",
    "n_interests": "interests per customer",
    "candidates_per_source": "candidates per source",
}


def _event_types(config: EngineConfig) -> list[str]:
    names = list(settings.RECSITE_EVENT_TYPES)
    for name in (*config.behaviour_weights, *config.exclude_event_types):
        if name not in names:
            names.append(name)
    return names


class TuningForm(forms.Form):
    """Every field of an :class:`EngineConfig`, one input each; :meth:`config` is the result."""

    half_life_days = forms.FloatField(
        label="Decay half-life (days)",
        widget=_number("any", slider="1:365:1"),
        help_text="An event this old counts half as much in the customer's history.",
    )
    mmr_lambda = forms.FloatField(
        label="Diversity λ",
        min_value=0,
        max_value=1,
        widget=_number("0.05", slider="0:1:0.05"),
        help_text="1 keeps the relevance order; lower trades relevance for variety.",
    )
    exposure_slots = forms.IntegerField(
        label="Exposure slots per 10 positions",
        min_value=0,
        max_value=MAX_EXPOSURE_SLOTS,
        widget=_number("1", slider=f"0:{MAX_EXPOSURE_SLOTS}:1"),
        help_text="The last positions of every 10 kept for products nobody has touched yet "
        "(no sales, views or carts), when one is similar enough to the customer. 0: none.",
    )
    exposure_min_score = forms.FloatField(
        label="Exposure: minimum score",
        min_value=-1,
        max_value=2,
        widget=_number("0.05", slider="0:2:0.05"),
        help_text="How strong the case for a product without behaviour must be to take a slot: "
        "its similarity to the customer (0-1) plus the share of the customer's best "
        "collaborative score that the products most like it earn (0-1).",
    )
    max_per_category = forms.IntegerField(
        label="At most per category",
        required=False,
        min_value=1,
        help_text="Empty: no cap.",
    )
    exclude_event_types = forms.MultipleChoiceField(
        label="Never recommend products the customer already…",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    n_interests = forms.IntegerField(label="Interests per customer", min_value=1, max_value=10)
    candidates_per_source = forms.IntegerField(
        label="Candidates per source", min_value=1, max_value=5000
    )
    new_arrival_days = forms.FloatField(label="New arrival window (days)")
    cold_collaborative = forms.FloatField(
        label="Cold products' borrowed collaborative share", widget=_number("any")
    )
    social_hop_decay = forms.FloatField(
        label="Social: second-hop share",
        min_value=0,
        max_value=1,
        widget=_number("0.05"),
        help_text="How much someone followed by a person the customer follows counts (0-1).",
    )
    social_half_life_days = forms.FloatField(
        label="Social: half-life (days)",
        widget=_number("any"),
        help_text="A network member's event this old counts half as much.",
    )
    social_tie_floor = forms.FloatField(
        label="Social: tie-strength floor",
        widget=_number("any"),
        help_text="How much a member who shares no product with the customer counts; shared "
        "taste adds up to 1 (above 0).",
    )
    popularity_half_life_days = forms.FloatField(label="Popularity half-life (days)")
    trending_window_days = forms.FloatField(label="Trending window (days)")
    ease_lambda = forms.FloatField(label="EASE regularisation λ", widget=_number("any"))
    knn_neighbours = forms.IntegerField(label="Item-kNN neighbours", min_value=1)
    cooccurrence_event_types = forms.MultipleChoiceField(
        label="Bought-together from",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    customers = forms.CharField(
        label="Preview customers",
        required=False,
        max_length=500,
        help_text=f"Customer ids, comma-separated (at most {MAX_CUSTOMERS}).",
    )
    note = forms.CharField(label="Note", required=False, max_length=500)
    locked = forms.MultipleChoiceField(
        label="Never change automatically",
        required=False,
        choices=[(name, LOCK_LABELS[name]) for name in SEARCHED],
        widget=forms.CheckboxSelectMultiple,
        help_text="Each fit searches these settings on the shop's own validation split and "
        "activates a better version when it wins there; ticked ones keep your values.",
    )

    def __init__(self, *args: Any, active: EngineConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        types = _event_types(active)
        for name in ("exclude_event_types", "cooccurrence_event_types"):
            cast(forms.MultipleChoiceField, self.fields[name]).choices = [(t, t) for t in types]
        # The weights come first on the page: one input (and slider) per source / event type.
        for source in SOURCES:
            self.fields[f"w_{source}"] = forms.FloatField(
                label=source.replace("_", " "),
                min_value=0,
                widget=_number("0.05", slider="0:3:0.05"),
                help_text=SOURCE_HELP.get(source, ""),
            )
        for kind in types:
            self.fields[f"b_{kind}"] = forms.FloatField(
                label=kind.replace("_", " "),
                min_value=0,
                widget=_number("0.05", slider="0:2:0.05"),
            )
        # Rotation: three inputs per list; a rate of 0 (or empty) leaves it off for that list.
        for kind in ROTATION_LISTS:
            self.fields[f"rot_{kind}_rate"] = forms.FloatField(
                label="Rate", required=False, min_value=0, max_value=1,
                widget=_number("0.05"),
                help_text="0 to 1; 0: off.",
            )  # fmt: skip
            self.fields[f"rot_{kind}_hours"] = forms.FloatField(
                label="Window (hours)", required=False, widget=_number("any"),
                help_text=f"At most {MAX_ROTATION_HOURS:g}.",
            )  # fmt: skip
            self.fields[f"rot_{kind}_min"] = forms.IntegerField(
                label="From impressions", required=False,
                help_text=f"1 to {MAX_ROTATION_IMPRESSIONS}.",
            )  # fmt: skip
        self._types = types
        self._active = active

    @classmethod
    def initial_for(cls, config: EngineConfig) -> dict[str, Any]:
        data = config.to_dict()
        initial: dict[str, Any] = {
            name: data[name]
            for name in data
            if name not in ("source_weights", "behaviour_weights", "rotation")
        }
        for kind in ROTATION_LISTS:
            values = {**ROTATION_DEFAULTS, "rate": 0.0, **config.rotation.get(kind, {})}
            for suffix, setting in _ROTATION_INPUTS:
                initial[f"rot_{kind}_{suffix}"] = values[setting]
        for source in SOURCES:
            initial[f"w_{source}"] = config.source_weights.get(source, 0.0)
        for kind in _event_types(config):
            initial[f"b_{kind}"] = config.behaviour_weights.get(kind, 0.0)
        return initial

    # Groups of fields, in page order.
    def source_fields(self) -> list[forms.BoundField]:
        return [self[f"w_{s}"] for s in SOURCES]

    def behaviour_fields(self) -> list[forms.BoundField]:
        return [self[f"b_{t}"] for t in self._types]

    def more_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in _MORE]

    def fit_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in _FIT_TIME]

    def rotation_groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (ROTATION_LABELS[kind], [self[f"rot_{kind}_{s}"] for s, _ in _ROTATION_INPUTS])
            for kind in ROTATION_LISTS
        ]

    def _rotation(self, cleaned: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The lists with a rate above 0, with their settings (an empty one takes its
        default); EngineConfig checks the values."""
        rotation = {}
        for kind in ROTATION_LISTS:
            if not cleaned.get(f"rot_{kind}_rate"):
                continue
            values = {}
            for suffix, setting in _ROTATION_INPUTS:
                value = cleaned.get(f"rot_{kind}_{suffix}")
                values[setting] = ROTATION_DEFAULTS[setting] if value is None else value
            rotation[kind] = values
        return rotation

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        values: dict[str, Any] = {
            "source_weights": {s: cleaned[f"w_{s}"] for s in SOURCES},
            "behaviour_weights": {t: cleaned[f"b_{t}"] for t in self._types},
            "rotation": self._rotation(cleaned),
        }
        for name in EngineConfig().to_dict():
            if name not in values:
                values[name] = cleaned.get(name)
        for name in ("exclude_event_types", "cooccurrence_event_types"):
            # Checkboxes come back in page order; the active order is kept, so ticking the same
            # boxes is no change (the order means nothing to the engine).
            chosen = list(cleaned.get(name) or [])
            known = [t for t in getattr(self._active, name) if t in chosen]
            values[name] = known + [t for t in chosen if t not in known]
        try:
            self._config = EngineConfig.from_dict(values)
        except ConfigError as exc:
            field, _, message = str(exc).partition(": ")
            field = field.replace("source_weights.", "w_").replace("behaviour_weights.", "b_")
            if field.startswith("rotation."):
                _, kind, setting = [*field.split("."), "", ""][:3]
                field = _rotation_field(kind, setting) if setting in ROTATION_DEFAULTS else field
            self.add_error(field if field in self.fields else None, message or str(exc))
        return cleaned

    def clean_customers(self) -> list[Customer]:
        ids = list(dict.fromkeys(p.strip() for p in self.cleaned_data["customers"].split(",")))
        ids = [i for i in ids if i]
        if len(ids) > MAX_CUSTOMERS:
            raise forms.ValidationError(f"At most {MAX_CUSTOMERS} customers.")
        found = customers_by_external_ids(external_ids=ids)
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise forms.ValidationError(f"Unknown customer id(s): {', '.join(unknown)}.")
        return [found[i] for i in ids]

    def config(self) -> EngineConfig:
        return cast(EngineConfig, self._config)


def _active() -> tuple[RecommendationConfig, EngineConfig]:
    row = recommendation_config_active()
    return row, EngineConfig.from_dict(row.config)


def _default_customers() -> list[Customer]:
    return customers_most_active(limit=DEFAULT_CUSTOMERS)


def _user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _fmt(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_fmt(item)}" for key, item in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return "none" if value is None else str(value)


def config_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What ``new`` changes compared with ``old``, one "field: a → b" line each."""
    if old is None:
        return []
    lines = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            a, b = dict(a or {}), dict(b or {})
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    lines.append(f"{name}.{key}: {_fmt(a.get(key))} → {_fmt(b.get(key))}")
        elif a != b:
            lines.append(f"{name}: {_fmt(a)} → {_fmt(b)}")
    return lines


def _history_rows(limit: int | None) -> list[dict[str, Any]]:
    versions = recommendation_config_list()
    by_version = {row.version: row for row in versions}
    rows = []
    for row in versions[:limit] if limit else versions:
        previous = by_version.get(row.version - 1)
        rows.append(
            {
                "row": row,
                "changes": config_changes(previous.config if previous else None, row.config),
            }
        )
    return rows


def _fit_notice(config: EngineConfig) -> tuple[str, ...]:
    try:
        return serving_engine().engine.fit_time_changes(config)
    except EngineNotReady:
        return ()


@dashboard_view
def tuning_page(request: HttpRequest) -> HttpResponse:
    """GET: the controls set to the active version. POST: save them as a new version."""
    row, active = _active()
    if request.method == "POST":
        form = TuningForm(request.POST, active=active)
        if form.is_valid():
            config = form.config()
            # "Save for an experiment": a version that does not serve until a variant names it.
            serves = request.POST.get("serve") != "no"
            saved = recommendation_config_save(
                config=config,
                created_by=_user(request),
                note=form.cleaned_data["note"],
                locked=form.cleaned_data["locked"],
                activate=serves,
            )
            if serves:
                text = f"Saved configuration version {saved.version}; it serves now."
                pending = _fit_notice(config)
                if pending:
                    text += f" {', '.join(pending)}: takes effect at the next fit."
            else:
                text = (
                    f"Saved configuration version {saved.version} for experiments; version "
                    f"{row.version} still serves. Name version {saved.version} as a variant's "
                    "config_version to test it."
                )
            messages.success(request, text)
            return redirect("dashboard:tuning")
    else:
        initial = TuningForm.initial_for(active)
        initial["locked"] = list(row.locked)
        initial["customers"] = ", ".join(c.external_id for c in _default_customers())
        form = TuningForm(initial=initial, active=active)
    try:
        serving = serving_engine()
    except EngineNotReady:
        serving = None
    return render(
        request,
        "dashboard/tuning.html",
        {
            "form": form,
            "active": row,
            "serving": serving,
            "history": _history_rows(HISTORY_ROWS),
            "fit_time_fields": sorted(HybridEngine.FIT_TIME_FIELDS),
            "rotation_on": bool(active.rotation),
        },
    )


def _preview_response(request: HttpRequest, form: TuningForm) -> HttpResponse:
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        customers = form.cleaned_data["customers"] or _default_customers()
        try:
            context["preview"] = tuning_preview(config=form.config(), customers=customers)
        except EngineNotReady as exc:
            context["not_ready"] = str(exc)
    # 200 even for bad input: the fragment shows the messages (tuning.js puts them next to
    # their fields), and the browser logs no error.
    return render(request, "dashboard/partials/tuning_preview.html", context)


@dashboard_view
def tuning_preview_fragment(request: HttpRequest) -> HttpResponse:
    """The preview fragment: POST a candidate (the tuning form); GET previews the active one."""
    _, active = _active()
    if request.method == "POST":
        form = TuningForm(request.POST, active=active)
    else:
        data = TuningForm.initial_for(active)
        data["customers"] = request.GET.get("customers", "")
        form = TuningForm(_as_post(data), active=active)
    return _preview_response(request, form)


def _as_post(initial: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in initial.items():
        if value is None:
            data[name] = ""
        elif isinstance(value, float) and math.isfinite(value):
            data[name] = repr(value)
        else:
            data[name] = value
    return data


@dashboard_view
def tuning_versions(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/tuning_versions.html", {"history": _history_rows(None)})


@require_POST
@dashboard_view
def tuning_restore(request: HttpRequest, version: int) -> HttpResponse:
    try:
        saved = recommendation_config_restore(version=version, created_by=_user(request))
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        pending = _fit_notice(EngineConfig.from_dict(saved.config))
        text = f"Restored version {version} as version {saved.version}; it serves now."
        if pending:
            text += f" {', '.join(pending)}: takes effect at the next fit."
        messages.success(request, text)
    back = (
        "dashboard:tuning-versions"
        if request.POST.get("next") == "versions"
        else "dashboard:tuning"
    )
    return redirect(back)


urlpatterns: list[URLPattern] = [
    path("tuning/", tuning_page, name="tuning"),
    path("tuning/preview", tuning_preview_fragment, name="tuning-preview"),
    path("tuning/versions/", tuning_versions, name="tuning-versions"),
    path("tuning/versions/<int:version>/restore", tuning_restore, name="tuning-restore"),
]
