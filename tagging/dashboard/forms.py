"""Forms of the tagging dashboard pages."""

from typing import Any

from django import forms

from tagging.models import ProductTagStatus, Tag
from tagging.services import TagError, tag_create, tag_name_normalise


class QueueFilterForm(forms.Form):
    """Filters of the review queue (GET)."""

    tag = forms.ModelChoiceField(
        queryset=Tag.objects.order_by("name"),
        required=False,
        to_field_name="name",
        empty_label="All tags",
    )
    status = forms.ChoiceField(
        choices=[("", "Any status"), *ProductTagStatus.choices],
        required=False,
        initial=ProductTagStatus.PENDING,
    )


class DecisionForm(forms.Form):
    """Bulk accept/reject of the checked suggestions (POST)."""

    ids = forms.TypedMultipleChoiceField(
        coerce=int,
        choices=[],
        error_messages={
            "required": "Tick at least one suggestion.",
        },
    )
    decision = forms.ChoiceField(
        choices=[(ProductTagStatus.ACCEPTED, "Accept"), (ProductTagStatus.REJECTED, "Reject")]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id may be posted; the service refuses unknown ones by name.
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(v, v) for v in raw]  # type: ignore[attr-defined]


class TagCreateForm(forms.Form):
    name = forms.CharField(
        max_length=255,
        help_text='A path such as "kitchen/mugs"; a missing parent ("kitchen") is created.',
    )
    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What belongs here, in words: zero-shot tagging reads it.",
    )

    def clean_name(self) -> str:
        name = tag_name_normalise(self.cleaned_data["name"])
        if not name:
            raise forms.ValidationError("Enter a name with at least one letter or digit.")
        if Tag.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A tag named “{name}” already exists.")
        return name

    def save(self) -> Tag:
        try:
            return tag_create(
                name=self.cleaned_data["name"], description=self.cleaned_data["description"]
            )
        except TagError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            raise


class TagImportForm(forms.Form):
    column = forms.CharField(
        max_length=100,
        initial="category",
        help_text='"category", or the name of a product attribute.',
    )
    assign = forms.BooleanField(
        required=False,
        label="Also tag each product with its own value (accepted)",
    )
