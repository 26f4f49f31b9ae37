"""The shareable report form: sections, window, experiment, note (checked again by the
service, which also checks the budget)."""

from django import forms

from privacy.services.reports import DEFAULT_DAYS, MAX_DAYS, MAX_NOTE, SECTIONS


class ReportForm(forms.Form):
    sections = forms.MultipleChoiceField(
        choices=list(SECTIONS.items()),
        widget=forms.CheckboxSelectMultiple,
        initial=["customers", "categories"],
        label="Sections",
    )
    days = forms.IntegerField(
        min_value=1, max_value=MAX_DAYS, initial=DEFAULT_DAYS, label="Window (days)"
    )
    experiment = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Experiment"
    )
    note = forms.CharField(max_length=MAX_NOTE, required=False, label="What it is for", strip=True)

    FIELDS = {"sections": "sections", "days": "days", "experiment": "experiment", "note": "note"}

    def __init__(self, *args: object, experiments: list[tuple[int, str]], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["experiment"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "—"), *experiments]
