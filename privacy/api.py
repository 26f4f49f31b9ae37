"""privacy's endpoints, mounted at ``api/<version>/`` by ``recsite/urls.py`` (before
recommender's, whose ``customers/<id>/`` takes the rest of the path):

- ``customers/<id>/export`` (admins, or a token with the ``privacy`` scope): everything held;
- ``privacy/audit`` (admins): the audit log, newest first;
- ``privacy/forget-requests`` (admins): forget requests, pending and applied;
- ``privacy/reports`` (admins, or a ``privacy`` token): the shareable reports released, and a
  new one (a job); ``privacy/reports/<id>`` one report as released.

Forgetting itself is recommender's ``DELETE customers/<id>/``, which records the request here.
"""

from typing import Any

import django_filters
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasPrivacyScope, IsAdminRole
from jobs.api.serializers import JobOutputSerializer
from recsite.api.catalog import customer_or_404
from recsite.api.errors import RULE, InvalidRequest, error_entry
from recsite.api.fields import StrictInputSerializer, TextField
from recsite.api.lookups import MAX_PK, int_or_404
from recsite.api.schema import refused_by_rule
from recsite.api.serializers import DetailOutputSerializer, ErrorOutputSerializer

from .models import AggregateRelease, AuditEntry, ForgetRequest
from .selectors import (
    aggregate_release_get,
    aggregate_release_list,
    audit_entry_list,
    forget_request_list,
)
from .services import reports
from .services.export import customer_export
from .tasks import report_start


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


# Shareable reports ---------------------------------------------------------------------------


class AggregateReleaseOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AggregateRelease
        fields = [
            "id", "released_at", "requested_by", "note", "sections", "days", "k", "epsilon",
            "job",
        ]  # fmt: skip


class ReportInputSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "ShareableReportInput"

    sections = serializers.ListField(
        child=serializers.ChoiceField(choices=list(reports.SECTIONS)),
        min_length=1,
        max_length=len(reports.SECTIONS),
        help_text="What the report holds: "
        + "; ".join(f"{key}: {title}" for key, title in reports.SECTIONS.items())
        + ".",
    )
    days = serializers.IntegerField(
        min_value=1,
        max_value=reports.MAX_DAYS,
        default=reports.DEFAULT_DAYS,
        help_text="The window: days up to the newest event.",
    )
    experiment = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PK,
        required=False,
        allow_null=True,
        default=None,
        help_text="The experiment of the experiment section (one that has started).",
    )
    note = TextField(
        max_length=reports.MAX_NOTE,
        required=False,
        allow_blank=True,
        default="",
        help_text="What the report is for (shown on it).",
    )


class Conflict(InvalidRequest):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _refused(exc: reports.ReportError) -> Exception:
    if exc.conflict:
        return Conflict(
            detail=f"{exc.field}: {exc.message}",
            errors=[error_entry(field=exc.field, message=exc.message)],
        )
    return ValidationError({exc.field: [serializers.ErrorDetail(exc.message, code=RULE)]})


@extend_schema(tags=["privacy"])
class ReportListCreateApi(ListAPIView):
    """Shareable reports: their figures went through k-suppression or the Laplace mechanism
    (docs/privacy.md, "Privacy-safe aggregates")."""

    permission_classes = [IsAuthenticated, HasPrivacyScope]
    serializer_class = AggregateReleaseOutputSerializer

    def get_queryset(self) -> Any:
        return aggregate_release_list()

    @extend_schema(
        operation_id="privacy_reports_list",
        summary="The shareable reports released, newest first, with the budget each spent",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="privacy_reports_create",
        summary="Release a shareable report (a job)",
        description="Starts the job that computes the report, suppresses groups of fewer than "
        "RECSITE_AGGREGATE_K customers or adds Laplace noise (spending RECSITE_AGGREGATE_EPSILON "
        "of the budget), and stores it as released; the job's counts name the report "
        "(`release`). Recorded in the audit log.",
        request=ReportInputSerializer,
        responses={
            202: JobOutputSerializer,
            409: OpenApiResponse(ErrorOutputSerializer, description="A report is being made."),
            422: refused_by_rule(
                "The privacy budget is spent (RECSITE_AGGREGATE_EPSILON_BUDGET), the experiment "
                "does not exist or has not started, or the experiment section and the "
                "experiment are not given together."
            ),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ReportInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            spec = reports.report_spec_check(
                sections=data["sections"],
                days=data["days"],
                experiment=data["experiment"],
                note=data["note"].strip(),
            )
        except reports.ReportError as exc:
            raise _refused(exc) from exc
        job = report_start(spec=spec, triggered_by=request.user)
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["privacy"])
class ReportDetailApi(APIView):
    permission_classes = [IsAuthenticated, HasPrivacyScope]

    @extend_schema(
        operation_id="privacy_reports_retrieve",
        summary="A shareable report, as released",
        description="The same figures on every read: the noise was drawn once, at release.",
        parameters=[
            OpenApiParameter("report_id", int, OpenApiParameter.PATH, description="Its id.")
        ],
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(DetailOutputSerializer, description="Unknown id."),
        },
    )
    def get(self, request: Request, report_id: int, **kwargs: Any) -> Response:
        release = aggregate_release_get(pk=int_or_404(report_id, "Report"))
        if release is None:
            raise NotFound(f"Report {report_id} not found.")
        return Response(release.document)
