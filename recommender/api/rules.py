"""Merchandising rules API: list, read, create, change and delete pin/boost/bury/filter/promote
rules (``/api/v1/rules/``).

Anyone with the 'read' scope may read rules (a shop back end may want to know why a product
sits where it does); changing them is for people: a signed-in merchandiser or admin, never an
API token. A refused rule is a 400 in the house format naming each bad field.
"""

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.roles import Scope
from accounts.selectors import request_scopes
from recommender.models import MerchandisingRule, RecommendationKind, RuleAction, RuleTarget
from recommender.selectors.merchandising import merchandising_rule_get, merchandising_rule_list
from recommender.services.merchandising import (
    merchandising_rule_create,
    merchandising_rule_delete,
    merchandising_rule_update,
)
from recommender.services.merchandising_validation import (
    MAX_PRIORITY,
    MAX_TARGET_VALUES,
    MerchandisingRuleInvalid,
)
from recsite.api import serializers as shared
from recsite.api.errors import RULE
from recsite.api.fields import MoneyField, StrictInputSerializer, TextField, TimestampField
from recsite.api.lookups import int_or_404
from recsite.api.schema import refused_by_rule

_NOT_FOUND = OpenApiResponse(shared.DetailOutputSerializer, description="Unknown rule id.")
_RULE_ID = OpenApiParameter("rule_id", int, OpenApiParameter.PATH, description="Rule id.")
_MEANING = refused_by_rule(
    "The fields have the documented types, but the rule they describe is refused: a factor "
    "or share outside what the action needs, an end before the start, unknown product ids."
)


class CanEditRules(BasePermission):
    """Reading needs the 'read' scope; writing needs a signed-in person with it."""

    message = (
        "Changing merchandising rules needs a signed-in merchandiser or admin; "
        "API tokens may only read them."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        scopes = request_scopes(request)
        if request.method in SAFE_METHODS:
            return Scope.READ in scopes
        # Session logins have no ``auth``; a token request carries its ApiToken there.
        return request.auth is None and Scope.READ in scopes


class RuleOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()
    surfaces = serializers.ListField(
        child=serializers.ChoiceField(choices=RecommendationKind.choices),
        help_text="The lists the rule applies to.",
    )

    class Meta:
        model = MerchandisingRule
        ref_name = "MerchandisingRuleOutput"
        fields = [
            "id", "name", "action", "target_kind", "target_values", "price_min", "price_max",
            "factor", "position", "share", "priority", "surfaces", "starts_at", "ends_at",
            "is_active", "created_by", "created_at", "updated_at",
        ]  # fmt: skip

    def get_created_by(self, rule: MerchandisingRule) -> str | None:
        return rule.created_by.get_username() if rule.created_by else None


class RuleInputSerializer(StrictInputSerializer):
    """Types and ranges; what a rule means (a boost above 1, a pin on products, an end after
    the start, products that exist) is checked by the service, which names the field (422)."""

    class Meta:
        ref_name = "MerchandisingRuleInput"

    name = TextField(max_length=200)
    action = serializers.ChoiceField(choices=RuleAction.choices)
    target_kind = serializers.ChoiceField(choices=RuleTarget.choices)
    target_values = serializers.ListField(
        child=TextField(max_length=255),
        required=False,
        max_length=MAX_TARGET_VALUES,
        help_text="Product ids (the merchant's; unknown ones are refused, 422), categories, "
        "brands or tag names; empty for price_range and out_of_stock.",
    )
    price_min = MoneyField(required=False, allow_null=True)
    price_max = MoneyField(
        required=False, allow_null=True, help_text="At least price_min (422 otherwise)."
    )
    factor = serializers.FloatField(
        required=False, allow_null=True, help_text="boost: > 1; bury: between 0 and 1 (422)."
    )
    position = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2_147_483_647,
        help_text="pin: 1 is the first position.",
    )
    share = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="promote: the share of positions reserved, in (0, 1] (422 otherwise).",
    )
    priority = serializers.IntegerField(
        required=False,
        min_value=-MAX_PRIORITY,
        max_value=MAX_PRIORITY,
        help_text="Higher runs first.",
    )
    surfaces = serializers.ListField(
        child=serializers.ChoiceField(choices=RecommendationKind.choices),
        required=False,
        min_length=1,
        help_text="The lists the rule applies to; default every list.",
    )
    starts_at = TimestampField(required=False, allow_null=True)
    ends_at = TimestampField(
        required=False, allow_null=True, help_text="After starts_at (422 otherwise)."
    )
    is_active = serializers.BooleanField(required=False)


def _refused(exc: MerchandisingRuleInvalid) -> ValidationError:
    # The serializer checked types and ranges; what is left is what the rule means (422).
    return ValidationError(
        {field: [ErrorDetail(message, code=RULE)] for field, message in exc.errors.items()}
    )


def _rule_or_404(rule_id: int) -> MerchandisingRule:
    rule = merchandising_rule_get(pk=int_or_404(rule_id, "Merchandising rule"))
    if rule is None:
        raise NotFound(f"Merchandising rule {rule_id} not found.")
    return rule


@extend_schema(tags=["rules"])
class RuleListCreateApi(GenericAPIView):
    permission_classes = [IsAuthenticated, CanEditRules]
    serializer_class = RuleOutputSerializer

    def get_queryset(self) -> Any:
        return merchandising_rule_list()

    @extend_schema(
        operation_id="rules_list",
        summary="List merchandising rules",
        responses={200: RuleOutputSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RuleOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="rules_create",
        summary="Create a merchandising rule",
        request=RuleInputSerializer,
        responses={201: RuleOutputSerializer, 422: _MEANING},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = RuleInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rule = merchandising_rule_create(
                data=body.validated_data, created_by=cast(User, request.user)
            )
        except MerchandisingRuleInvalid as exc:
            raise _refused(exc) from None
        return Response(RuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["rules"], parameters=[_RULE_ID])
class RuleDetailApi(GenericAPIView):
    permission_classes = [IsAuthenticated, CanEditRules]
    serializer_class = RuleOutputSerializer

    @extend_schema(
        operation_id="rules_retrieve",
        summary="A merchandising rule",
        responses={200: RuleOutputSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, rule_id: int, *args: Any, **kwargs: Any) -> Response:
        return Response(RuleOutputSerializer(_rule_or_404(rule_id)).data)

    @extend_schema(
        operation_id="rules_partial_update",
        summary="Change some fields of a merchandising rule",
        description="Fields left out keep their values; the changed rule is checked as a whole.",
        request=RuleInputSerializer,
        responses={200: RuleOutputSerializer, 404: _NOT_FOUND, 422: _MEANING},
    )
    def patch(self, request: Request, rule_id: int, *args: Any, **kwargs: Any) -> Response:
        rule = _rule_or_404(rule_id)
        body = RuleInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            rule = merchandising_rule_update(rule=rule, data=body.validated_data)
        except MerchandisingRuleInvalid as exc:
            raise _refused(exc) from None
        return Response(RuleOutputSerializer(rule).data)

    @extend_schema(
        operation_id="rules_delete",
        summary="Delete a merchandising rule",
        responses={204: None, 404: _NOT_FOUND},
    )
    def delete(self, request: Request, rule_id: int, *args: Any, **kwargs: Any) -> Response:
        merchandising_rule_delete(rule=_rule_or_404(rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
