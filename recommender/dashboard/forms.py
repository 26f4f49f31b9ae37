"""Forms of the dashboard's overview, products, customers and jobs pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django import forms

from recommender.choices import JobKind

_YES_NO = [("", "any"), ("yes", "yes"), ("no", "no")]


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


class ProductFilterForm(forms.Form):
    """The product list's filters (GET). Unknown categories and brands are refused."""

    q = forms.CharField(label="Id or title contains", required=False, max_length=200)
    category = forms.ChoiceField(required=False)
    brand = forms.ChoiceField(required=False)
    active = forms.ChoiceField(choices=_YES_NO, required=False)
    embedded = forms.ChoiceField(choices=_YES_NO, required=False)

    def __init__(
        self,
        *args: object,
        categories: list[str],
        brands: list[str],
        choices_limit: int | None = None,
        value_exists: Callable[[str, str], bool] | None = None,
        **kwargs: object,
    ):
        """``categories``/``brands``: the values to offer. When a list is longer than
        ``choices_limit``, that filter is a text field instead, and ``value_exists(field,
        value)`` refuses a value no product has (a list of 17,000 brands is no use to anyone
        and costs a second to render)."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._value_exists = value_exists
        for name, values in (("category", categories), ("brand", brands)):
            if choices_limit is not None and len(values) > choices_limit:
                self.fields[name] = forms.CharField(
                    required=False,
                    max_length=255,
                    widget=forms.TextInput(attrs={"placeholder": f"exact {name}"}),
                )
            else:
                cast(forms.ChoiceField, self.fields[name]).choices = [
                    ("", "any"),
                    *((v, v) for v in values),
                ]

    def _clean_value(self, name: str) -> str:
        value = cast(str, self.cleaned_data.get(name, ""))
        checked = not isinstance(self.fields[name], forms.ChoiceField)
        exists = self._value_exists
        if value and checked and exists is not None and not exists(name, value):
            raise forms.ValidationError(f"No product has the {name} {value!r}.")
        return value

    def clean_category(self) -> str:
        return self._clean_value("category")

    def clean_brand(self) -> str:
        return self._clean_value("brand")

    def filters(self) -> dict[str, object]:
        """Keyword arguments for ``product_filter`` (call after ``is_valid()``)."""
        data = self.cleaned_data
        return {
            "q": data.get("q", "").strip(),
            "category": data.get("category", ""),
            "brand": data.get("brand", ""),
            "active": _yes_no(data.get("active", "")),
            "embedded": _yes_no(data.get("embedded", "")),
        }


class SemanticSearchForm(forms.Form):
    """Search the catalogue by meaning (GET ``search``)."""

    search = forms.CharField(
        label="Search by meaning",
        max_length=500,
        strip=True,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. red party bags"}),
    )


class CustomerSearchForm(forms.Form):
    ORDERS = [("id", "id"), ("events", "most events"), ("recent", "latest activity")]

    q = forms.CharField(label="Customer id contains", required=False, max_length=128, strip=True)
    order = forms.ChoiceField(label="Order by", choices=ORDERS, required=False)


# Jobs an admin may start from the jobs page.
TRIGGERABLE = [
    (JobKind.REINDEX.value, JobKind.REINDEX.label),
    (JobKind.TRAIN.value, JobKind.TRAIN.label),
]


class JobTriggerForm(forms.Form):
    kind = forms.ChoiceField(choices=TRIGGERABLE)
