"""Forms of the churn pages: the at-risk list's filters and the score-now trigger."""

from django import forms

from churn.models import RiskBand


class AtRiskFilterForm(forms.Form):
    """The at-risk table's filter (GET parameters)."""

    band = forms.ChoiceField(
        choices=[("", "High and medium"), *RiskBand.choices], required=False, label="Band"
    )
    limit = forms.IntegerField(min_value=1, max_value=500, initial=50, required=False)


class ScoreNowForm(forms.Form):
    retrain = forms.BooleanField(required=False, label="Train a new model first")
