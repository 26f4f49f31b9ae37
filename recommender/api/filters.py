"""Query-parameter filters of the list endpoints.

A malformed value is refused with 400 naming the parameter (DjangoFilterBackend raises the
FilterSet's form errors), never ignored: a client that misspells ``is_active=ture`` must not
silently get every product.
"""

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from recommender.ingestion.values import TimestampError, parse_timestamp
from recommender.models import Customer, Event, Product
from recommender.pseudonyms import customer_id_lookups

_BOOLEANS = {"true": True, "false": False}


class StrictBooleanField(forms.Field):
    """``true`` or ``false``, exactly as the OpenAPI document's boolean parameters are written;
    anything else is an error, not "no filter"."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value in _BOOLEANS:
            return _BOOLEANS[value]
        raise forms.ValidationError(f"expected true or false, got {value!r}")


class StrictBooleanFilter(django_filters.BooleanFilter):
    # Subclassing BooleanFilter keeps the OpenAPI type "boolean" in drf-spectacular.
    field_class = StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class TimestampFormField(forms.Field):
    """A bound of a time range, read by the one timestamp parser (``parse_timestamp``). A moment
    an offset moves outside years 1-9999 in UTC selects what the earliest or latest moment
    selects, so it is taken as that moment instead of failing."""

    def to_python(self, value: Any) -> Any:
        if value in (None, ""):
            return None
        try:
            return parse_timestamp(str(value), clamp=True)
        except TimestampError as exc:
            raise forms.ValidationError(str(exc)) from None


class TimestampFilter(django_filters.IsoDateTimeFilter):
    # Subclassing IsoDateTimeFilter keeps the OpenAPI format "date-time" in drf-spectacular.
    field_class = TimestampFormField


class ProductFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(help_text="Exact category.")
    brand = django_filters.CharFilter(help_text="Exact brand.")
    is_active = StrictBooleanFilter(help_text="true or false.")
    q = django_filters.CharFilter(
        method="filter_q", help_text="Text contained in the title or description (any case)."
    )
    updated_since = TimestampFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="ISO 8601; products changed at or after this moment.",
    )

    class Meta:
        model = Product
        fields = ["category", "brand", "is_active", "q", "updated_since"]

    def filter_q(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        return queryset.filter(Q(title__icontains=value) | Q(description__icontains=value))


class CustomerFilter(django_filters.FilterSet):
    created_since = TimestampFilter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="ISO 8601; customers first seen at or after this moment.",
    )

    class Meta:
        model = Customer
        fields = ["created_since"]


class EventFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(
        method="filter_customer", help_text="The merchant's customer id."
    )
    product = django_filters.CharFilter(
        field_name="product__external_id", help_text="The merchant's product id."
    )
    event_type = django_filters.CharFilter(help_text="Exact event type, e.g. purchase.")
    session_id = django_filters.CharFilter(help_text="Exact session id.")
    since = TimestampFilter(
        field_name="occurred_at",
        lookup_expr="gte",
        help_text="ISO 8601; events that occurred at or after this moment.",
    )
    until = TimestampFilter(
        field_name="occurred_at",
        lookup_expr="lt",
        help_text="ISO 8601; events that occurred before this moment (exclusive, so that "
        "consecutive since/until windows do not overlap).",
    )

    class Meta:
        model = Event
        fields = ["customer", "product", "event_type", "session_id", "since", "until"]

    def filter_customer(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        # Hashed like every lookup when ids are pseudonymous (recommender.pseudonyms).
        return queryset.filter(customer__external_id__in=customer_id_lookups(value))
