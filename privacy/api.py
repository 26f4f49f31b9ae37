"""privacy's endpoints, mounted at ``api/<version>/`` by ``recsite/urls.py`` (before
recommender's, whose ``customers/<id>/`` takes the rest of the path):

- ``customers/<id>/export`` (admins, or a token with the ``privacy`` scope): everything held;
- ``privacy/audit`` (admins): the audit log, newest first;
- ``privacy/forget-requests`` (admins): forget requests, pending and applied.

Forgetting itself is recommender's ``DELETE customers/<id>/``, which records the request here.
"""

from typing import Any

import django_filters
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasPrivacyScope, IsAdminRole
from recsite.api.catalog import customer_or_404
from recsite.api.serializers import DetailOutputSerializer

from .models import AuditEntry, ForgetRequest
from .selectors import audit_entry_list, forget_request_list
from .services.export import customer_export


class AuditEntryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "target", "detail"]


class ForgetRequestOutputSerializer(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ForgetRequest
        fields = [
            "id", "customer_key", "events_deleted", "requested_at", "requested_by",
            "deadline_at", "job", "applied_at", "overdue", "report",
        ]  # fmt: skip

    def get_overdue(self, request: ForgetRequest) -> bool:
        return request.applied_at is None and request.deadline_at < timezone.now()


class AuditEntryFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(help_text="Exact action, e.g. customer.forget.")
    actor = django_filters.CharFilter(help_text="Exact actor, e.g. user:alice.")

    class Meta:
        model = AuditEntry
        fields = ["action", "actor"]


_ADMIN_ONLY = [IsAuthenticated, IsAdminRole]


@extend_schema(tags=["privacy"])
class AuditEntryListApi(ListAPIView):
    permission_classes = _ADMIN_ONLY
    serializer_class = AuditEntryOutputSerializer
    filterset_class = AuditEntryFilter

    def get_queryset(self) -> Any:
        return audit_entry_list()

    @extend_schema(operation_id="privacy_audit_list", summary="The audit log, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["privacy"])
class ForgetRequestListApi(ListAPIView):
    permission_classes = _ADMIN_ONLY
    serializer_class = ForgetRequestOutputSerializer

    def get_queryset(self) -> Any:
        return forget_request_list()

    @extend_schema(
        operation_id="privacy_forget_requests_list",
        summary="Forget requests, newest first, with when each was fully applied",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["privacy"])
class CustomerExportApi(APIView):
    permission_classes = [IsAuthenticated, HasPrivacyScope]

    @extend_schema(
        operation_id="customers_export",
        summary="Everything held about a customer (access request)",
        description="The customer and their attributes, activity, every event, every list "
        "served to them, churn scores and interest tags, plus what other apps register. "
        "Recorded in the audit log.",
        parameters=[
            OpenApiParameter(
                "customer_id", str, OpenApiParameter.PATH, description="The merchant's id."
            )
        ],
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(DetailOutputSerializer, description="Unknown id."),
        },
    )
    def get(self, request: Request, customer_id: str, **kwargs: Any) -> Response:
        return Response(customer_export(customer=customer_or_404(customer_id)))
