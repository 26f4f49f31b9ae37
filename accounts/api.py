"""Token management API, for logged-in admins only.

A token can never manage tokens: API tokens carry at most 'read' and 'ingest', and these views
need the 'admin' scope, which only people hold (see ``accounts.roles``). Mounted under
``/api/v1/tokens/`` by ``recommender/api/urls.py``.
"""

from typing import Any, cast

from django.contrib.auth.models import User
from django.urls import path
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recsite.api import serializers as s
from recsite.api.fields import StrictInputSerializer, TextField, TimestampField, rule_error
from recsite.api.lookups import int_or_404
from recsite.api.schema import refused_by_rule

from .models import ApiToken
from .permissions import IsAdminRole
from .roles import TOKEN_SCOPES
from .selectors import api_token_get, api_token_list
from .services import TokenScopeError, api_token_create, api_token_revoke


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``accounts.authentication.ApiTokenAuthentication`` in the OpenAPI schema."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer"
        )


class TokenOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "scopes", "created_by", "created_at", "last_used_at",
            "expires_at", "revoked_at", "is_active",
        ]  # fmt: skip

    def get_created_by(self, token: ApiToken) -> str | None:
        return token.created_by.get_username() if token.created_by else None

    def get_is_active(self, token: ApiToken) -> bool:
        """Neither revoked nor expired."""
        expired = token.expires_at is not None and token.expires_at <= timezone.now()
        return token.revoked_at is None and not expired


class TokenCreatedOutputSerializer(TokenOutputSerializer):
    token = serializers.CharField(help_text="The raw token. It is shown this once only.")

    class Meta(TokenOutputSerializer.Meta):
        fields = [*TokenOutputSerializer.Meta.fields, "token"]


class TokenCreateInputSerializer(StrictInputSerializer):
    name = TextField(max_length=100, help_text="What uses it, e.g. 'shop-prod'.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(TOKEN_SCOPES)), min_length=1
    )
    expires_at = TimestampField(
        required=False, allow_null=True, help_text="In the future (422 otherwise)."
    )

    def validate_expires_at(self, value: Any) -> Any:
        if value is not None and value <= timezone.now():
            raise rule_error("must be in the future")
        return value


_ADMIN_ONLY = [IsAuthenticated, IsAdminRole]


@extend_schema(tags=["tokens"])
class TokenListCreateApi(GenericAPIView):
    permission_classes = _ADMIN_ONLY
    serializer_class = TokenOutputSerializer

    def get_queryset(self) -> Any:
        return api_token_list()

    @extend_schema(
        operation_id="tokens_list",
        summary="List API tokens",
        responses={200: TokenOutputSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TokenOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        summary="Create an API token",
        request=TokenCreateInputSerializer,
        responses={
            201: TokenCreatedOutputSerializer,
            422: refused_by_rule("expires_at is not in the future."),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token, raw = api_token_create(
                name=data.validated_data["name"],
                scopes=data.validated_data["scopes"],
                created_by=cast(User, request.user),  # IsAdminRole: a login.
                expires_at=data.validated_data.get("expires_at"),
            )
        except TokenScopeError as exc:
            raise ValidationError({"scopes": [str(exc).removeprefix("scopes: ")]}) from None
        token.token = raw  # type: ignore[attr-defined]
        return Response(TokenCreatedOutputSerializer(token).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tokens"])
class TokenRevokeApi(APIView):
    permission_classes = _ADMIN_ONLY

    @extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke an API token",
        description="The token stops working at once; its row stays for the record.",
        responses={
            200: TokenOutputSerializer,
            404: OpenApiResponse(s.ErrorOutputSerializer, description="Unknown token id."),
        },
    )
    def delete(self, request: Request, token_id: int, *args: Any, **kwargs: Any) -> Response:
        token = api_token_get(pk=int_or_404(token_id, "Token"))
        if token is None:
            raise NotFound(f"Token {token_id} not found.")
        api_token_revoke(token=token)
        return Response(TokenOutputSerializer(token).data)


urlpatterns = [
    path("tokens/", TokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", TokenRevokeApi.as_view(), name="token-revoke"),
]
