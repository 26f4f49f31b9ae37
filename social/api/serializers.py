"""Serializers of the social API: the relationship batch (documentation only: items are
validated by ``social.records``, the parser the file importer uses too; a test keeps the fields
equal to ``RELATIONSHIP_FIELDS``) and the counts it answers."""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from recsite.api.fields import IdField, TimestampField
from social.records import MAX_WEIGHT, RELATIONSHIP_TYPES


class RelationshipItemSerializer(serializers.Serializer):
    openapi_closed = True  # An unknown field is refused.

    customer_id = IdField(
        help_text="Who follows, trusts, is a friend, or was referred; unknown customers are "
        "created."
    )
    target_customer_id = IdField(
        help_text="Whom they follow or trust, their friend, or who referred them; unknown "
        "customers are created. Not the customer themself (422)."
    )
    type = serializers.ChoiceField(
        choices=list(RELATIONSHIP_TYPES),
        help_text="follows, trusts, friend (stored as two edges, one each way), referred_by.",
    )
    weight = serializers.FloatField(
        required=False,
        help_text=f"How strong the tie is: a number > 0 and <= {MAX_WEIGHT:g} (422 otherwise); "
        "1 by default.",
    )
    created_at = TimestampField(
        required=False,
        help_text="When the relationship began (ISO 8601); when it was received by default. "
        "More than one day ahead is refused (422).",
    )


class RelationshipBatchInputSerializer(serializers.Serializer):
    """``{"items": [...]}``: from 1 to RECSITE_API_MAX_BATCH relationships, nothing else."""

    openapi_closed = True

    def get_fields(self) -> dict[str, Any]:
        return {
            "items": serializers.ListField(
                child=RelationshipItemSerializer(),
                min_length=1,
                max_length=settings.RECSITE_API_MAX_BATCH,
                help_text="From 1 to RECSITE_API_MAX_BATCH relationships; one bad item refuses "
                "the whole batch, listing every problem.",
            )
        }


class RelationshipCountsOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="New edges (a friendship counts two).")
    updated = serializers.IntegerField(help_text="Known edges whose weight changed.")
    unchanged = serializers.IntegerField(help_text="Known edges sent again as they are.")
    duplicates = serializers.IntegerField(help_text="Edges repeated within the batch.")
    customers_created = serializers.IntegerField()
