"""Serializers of the v1 API.

Batch items are documented here but *validated* by ``recommender.ingestion.records``: the item
serializers below only describe the shapes for OpenAPI. A DRF serializer per item would be
several times slower than the parser at 1,000 items a request, and it would be a second source
of truth beside the parser that the CSV importers use. ``tests/recommender/api/test_openapi.py``
asserts that the documented item fields equal ``records.PRODUCT_FIELDS``, ``CUSTOMER_FIELDS``
and ``EVENT_FIELDS``, so the documentation cannot drift from what is accepted.
"""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from recommender.ingestion import records
from recommender.models import Customer, Product
from recsite.api.catalog import ProductOutputSerializer
from recsite.api.fields import IdField, MoneyField, TextField, TimestampField

_BATCH_HELP = (
    "From 1 to RECSITE_API_MAX_BATCH items (1,000 by default). Every item is checked before "
    "anything is written: one bad item refuses the whole batch, listing every problem."
)

# Batch items (documentation only) ------------------------------------------------------------


class ProductItemSerializer(serializers.Serializer):
    openapi_closed = True  # An unknown field is refused.

    product_id = IdField(help_text="The merchant's product id (SKU), in the id alphabet.")
    title = TextField(max_length=records.MAX_TITLE_LENGTH)
    description = TextField(required=False, allow_blank=True, max_length=100_000)
    category = TextField(required=False, allow_blank=True, max_length=records.MAX_NAME_LENGTH)
    brand = TextField(required=False, allow_blank=True, max_length=records.MAX_NAME_LENGTH)
    price = MoneyField(
        required=False, allow_null=True, help_text="A number >= 0; kept to two decimals."
    )
    tags = serializers.ListField(
        child=TextField(max_length=records.MAX_NAME_LENGTH, allow_blank=True),
        required=False,
        help_text="A list of strings; blank ones are left out.",
    )
    attributes = serializers.DictField(
        required=False,
        help_text="Free attributes (a JSON object). Its text follows the same rules as any "
        "text: a control character or an unpaired surrogate anywhere inside is refused (422).",
    )
    is_active = serializers.BooleanField(
        required=False, default=True, help_text="Inactive products are never recommended."
    )


class CustomerItemSerializer(serializers.Serializer):
    openapi_closed = True

    customer_id = IdField(help_text="The merchant's customer id, in the id alphabet.")
    attributes = serializers.DictField(
        required=False,
        help_text="Free attributes (a JSON object); replaces the stored ones. No control "
        "character or unpaired surrogate anywhere inside (422).",
    )


class EventItemSerializer(serializers.Serializer):
    openapi_closed = True

    event_id = TextField(
        required=False,
        allow_blank=True,
        max_length=records.MAX_EVENT_ID_LENGTH,
        help_text="Idempotency key: an event with a known id is a no-op. Without one, a key is "
        "derived from the other fields, so an identical replay is still a no-op.",
    )
    customer_id = IdField(help_text="The merchant's customer id; unknown customers are created.")
    product_id = IdField(
        required=False,
        help_text="A product already sent to products/batch (an unknown one is refused, 422). "
        "Required except for searches (422 when missing).",
    )
    event_type = serializers.ChoiceField(
        choices=[], help_text="One of the RECSITE_EVENT_TYPES setting."
    )
    timestamp = TimestampField(
        help_text="ISO 8601; without an offset it is read as UTC. More than one day ahead, or "
        "outside years 1-9999 once moved to UTC, is refused (422)."
    )
    quantity = serializers.IntegerField(
        required=False, min_value=1, max_value=2_147_483_647, default=1
    )
    value = MoneyField(required=False, allow_null=True, help_text="Money value, >= 0.")
    session_id = TextField(required=False, allow_blank=True, max_length=records.MAX_ID_LENGTH)
    search_query = TextField(
        required=False,
        allow_blank=True,
        max_length=records.MAX_SEARCH_QUERY_LENGTH,
        help_text="Required for event_type 'search' (422 when missing).",
    )
    recommendation_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="The recommendation_id of the served list the event came from (a click, "
        "add to cart or purchase of a listed product): attributes it to that list and its "
        "experiment variant. Without one, last-touch attribution applies (docs/experiments.md). "
        "An id no list has is stored and attributed to no one.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when the schema is built, not at import: the setting may change.
        self.fields["event_type"].choices = list(settings.RECSITE_EVENT_TYPES)  # type: ignore[attr-defined]


class _BatchInputSerializer(serializers.Serializer):
    """``{"items": [...]}``: from 1 to RECSITE_API_MAX_BATCH items, nothing else."""

    openapi_closed = True
    item_serializer: type[serializers.Serializer]

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "items": serializers.ListField(
                child=self.item_serializer(),
                min_length=1,
                max_length=settings.RECSITE_API_MAX_BATCH,
                help_text=_BATCH_HELP,
            )
        }


class ProductBatchInputSerializer(_BatchInputSerializer):
    item_serializer = ProductItemSerializer


class CustomerBatchInputSerializer(_BatchInputSerializer):
    item_serializer = CustomerItemSerializer


class EventBatchInputSerializer(_BatchInputSerializer):
    item_serializer = EventItemSerializer


class UpsertCountsOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class EventInsertCountsOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(
        help_text="Events whose event_id was already known (replays), including repeats "
        "within this batch."
    )
    customers_created = serializers.IntegerField()


# Reads -----------------------------------------------------------------------------------------


_payloads: dict[tuple[int, object], dict[str, Any]] = {}
_PAYLOADS_MAX = 50_000
# One serializer for every payload: building a ModelSerializer introspects the model and copies
# its fields (about 240 us a product, 2.4 ms of a list of ten products this process has not
# shown yet); its to_representation keeps no state between calls (about 25 us a product).
_product_output = ProductOutputSerializer()


def product_payload(product: Product) -> dict[str, Any]:
    """``ProductOutputSerializer(product).data``, cached per (product, ``updated_at``).

    Recommendation lists repeat the same products all day. Every change of a product moves its
    ``updated_at`` (``auto_now``; the bulk importers set it too), so a changed product is never
    served stale. Per process and bounded (cleared when full). Callers must not mutate it.
    """
    key = (product.pk, product.updated_at)
    payload = _payloads.get(key)
    if payload is None:
        payload = dict(_product_output.to_representation(product))
        if len(_payloads) >= _PAYLOADS_MAX:
            _payloads.clear()
        _payloads[key] = payload
    return payload


class CustomerOutputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="external_id")

    class Meta:
        model = Customer
        fields = ["customer_id", "attributes", "created_at", "updated_at"]


class CustomerDetailOutputSerializer(CustomerOutputSerializer):
    event_counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='Number of events of each type, e.g. {"view": 7, "purchase": 2}.',
    )

    class Meta(CustomerOutputSerializer.Meta):
        fields = [*CustomerOutputSerializer.Meta.fields, "event_counts"]


class CustomerForgetOutputSerializer(serializers.Serializer):
    deleted_events = serializers.IntegerField()


class ProductDeleteOutputSerializer(serializers.Serializer):
    deleted_events = serializers.IntegerField(help_text="Events about the product, deleted.")


class EventOutputSerializer(serializers.Serializer):
    """An event as sent, with the merchant's ids (never recsite's primary keys)."""

    event_id = serializers.CharField()
    customer_id = serializers.CharField(source="customer.external_id")
    product_id = serializers.CharField(source="product.external_id", allow_null=True)
    event_type = serializers.CharField()
    timestamp = serializers.DateTimeField(source="occurred_at")
    quantity = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    session_id = serializers.CharField()
    search_query = serializers.CharField()
    recommendation_id = serializers.UUIDField(allow_null=True)
    received_at = serializers.DateTimeField()
