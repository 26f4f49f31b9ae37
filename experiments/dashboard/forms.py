"""The admins' form creating an experiment on the page: a control and one treatment (the API
creates experiments with more variants)."""

from django import forms

from experiments.models import Baseline, ExperimentList, Metric


class ExperimentCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    lists = forms.MultipleChoiceField(
        choices=ExperimentList.choices, widget=forms.CheckboxSelectMultiple, initial=["customer"]
    )
    control_name = forms.CharField(max_length=64, initial="control", label="Control")
    control_config_version = forms.IntegerField(
        min_value=1, required=False, label="Control's configuration version",
        help_text="Empty: the active configuration.",
    )  # fmt: skip
    treatment_name = forms.CharField(max_length=64, initial="treatment", label="Treatment")
    treatment_config_version = forms.IntegerField(
        min_value=1, required=False, label="Treatment's configuration version"
    )
    treatment_baseline = forms.ChoiceField(
        choices=Baseline.choices, required=False, label="Or a baseline"
    )
    treatment_share = forms.IntegerField(
        min_value=1, max_value=99, initial=50, label="Treatment's share (%)"
    )
    primary_metric = forms.ChoiceField(choices=Metric.choices, initial=Metric.CTR)
    horizon_visitors = forms.IntegerField(
        min_value=1, initial=1000, label="Visitors per variant before deciding (fixed horizon)"
    )

    # Service field names (ExperimentError.field) -> form fields.
    FIELDS = {
        "name": "name",
        "lists": "lists",
        "variants[0].name": "control_name",
        "variants[0].config_version": "control_config_version",
        "variants[1].name": "treatment_name",
        "variants[1].config_version": "treatment_config_version",
        "variants[1].baseline": "treatment_baseline",
        "primary_metric": "primary_metric",
        "horizon_visitors": "horizon_visitors",
    }


class ReplayForm(forms.Form):
    """An admin's replay of an experiment on past traffic (docs/experiments.md, "Replay")."""

    since = forms.DateField(
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The first day replayed; the engine learns from the events before it.",
    )
    days = forms.IntegerField(min_value=1, max_value=366, initial=28, label="Days")
    k = forms.IntegerField(min_value=1, max_value=100, initial=10, label="Products per list")

    # Service field names (ExperimentError.field) -> form fields.
    FIELDS = {"from": "since", "days": "days", "k": "k", "lists": None, "experiment": None}
