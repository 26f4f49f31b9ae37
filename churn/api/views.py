"""Churn endpoints: a customer's risk, the at-risk list, a win-back list, and the scoring job."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasReadScope, IsAdminRole
from churn import selectors, services
from churn.models import ChurnJobKind, ChurnScore, RiskBand
from churn.tasks import churn_job_run
from jobs.api.serializers import JobOutputSerializer
from jobs.services.runs import job_start
from recsite.api import serializers as s
from recsite.api.catalog import ProductOutputSerializer, customer_or_404
from recsite.api.fields import StrictInputSerializer, WholeNumberField
from recsite.api.query import query_input

MAX_LIMIT = 500
_NOT_FOUND = OpenApiResponse(s.DetailOutputSerializer, description="Unknown or unscored customer.")
_CUSTOMER_ID = OpenApiParameter(
    "customer_id", str, OpenApiParameter.PATH, description="Customer id."
)


class DriverOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ChurnDriverOutput"

    feature = serializers.CharField()
    # DRF's metaclass pops declared fields, so Field.label is not shadowed at run time.
    label = serializers.CharField(help_text="The feature in words.")  # type: ignore[assignment]
    value = serializers.FloatField(allow_null=True, help_text="This customer's value.")
    typical = serializers.FloatField(allow_null=True, help_text="The median customer's value.")
    effect = serializers.FloatField(
        help_text="Risk with this value minus risk with the typical value (probability points)."
    )


class ChurnScoreOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ChurnScoreOutput"

    customer_id = serializers.CharField(source="customer.external_id")
    score = serializers.FloatField(help_text="Probability of no purchase within the horizon.")
    band = serializers.ChoiceField(choices=RiskBand.choices)
    drivers = DriverOutputSerializer(many=True)
    model_version = serializers.CharField()
    as_of = serializers.DateTimeField(help_text="Events before this moment were read.")
    computed_at = serializers.DateTimeField()


class CustomerChurnApi(APIView):
    """A customer's latest churn score, its band and the features that drive it."""

    permission_classes = [IsAuthenticated, HasReadScope]

    @extend_schema(
        tags=["churn"],
        operation_id="customers_churn",
        summary="Churn risk of a customer",
        parameters=[_CUSTOMER_ID],
        responses={200: ChurnScoreOutputSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, customer_id: str, **kwargs: Any) -> Response:
        customer = customer_or_404(customer_id)
        score = selectors.churn_score_latest(customer=customer)
        if score is None:
            raise NotFound(
                f"Customer '{customer_id}' has no churn score yet: customers are scored once "
                "they have a purchase, by the next churn scoring run."
            )
        return Response(ChurnScoreOutputSerializer(score).data)


class AtRiskListApi(APIView):
    """Customers of the latest scoring run, riskiest first."""

    permission_classes = [IsAuthenticated, HasReadScope]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChurnAtRiskInput"

        band = serializers.ChoiceField(
            choices=RiskBand.choices,
            required=False,
            help_text="Only this band; without it, high and medium.",
        )
        limit = WholeNumberField(min_value=1, max_value=MAX_LIMIT, default=50)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChurnAtRiskOutput"

        as_of = serializers.DateTimeField(allow_null=True)
        model_version = serializers.CharField(allow_null=True)
        results = ChurnScoreOutputSerializer(many=True)

    @extend_schema(
        tags=["churn"],
        operation_id="customers_at_risk",
        summary="Customers at risk of churning",
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        run = selectors.churn_run_latest()
        scores: list[ChurnScore] = selectors.churn_at_risk_list(
            band=data.get("band"), limit=data["limit"]
        )
        body = {
            "as_of": run.as_of if run else None,
            "model_version": run.model_version if run else None,
            "results": scores,
        }
        return Response(self.OutputSerializer(body).data)


class WinBackItemOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WinBackItemOutput"

    product = ProductOutputSerializer()
    # Popped by DRF's metaclass like ``label`` above.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["repurchase", "recommendation"]
    )
    score = serializers.FloatField()
    reason = serializers.CharField()


class CustomerWinBackApi(APIView):
    """Products to win a customer back: repurchase candidates and their best recommendations."""

    permission_classes = [IsAuthenticated, HasReadScope]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WinBackInput"

        k = WholeNumberField(min_value=1, max_value=100, default=10)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WinBackOutput"

        customer_id = serializers.CharField()
        churn = ChurnScoreOutputSerializer(allow_null=True)
        recommendation_id = serializers.UUIDField(
            allow_null=True, help_text="Of the recommended items, to attribute clicks."
        )
        note = serializers.CharField(allow_blank=True)
        results = WinBackItemOutputSerializer(many=True)

    @extend_schema(
        tags=["churn"],
        operation_id="customers_win_back",
        summary="Win-back list for a customer",
        parameters=[InputSerializer, _CUSTOMER_ID],
        responses={200: OutputSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, customer_id: str, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        customer = customer_or_404(customer_id)
        result = services.winback_list(customer=customer, k=data["k"])
        body = {
            "customer_id": customer.external_id,
            "churn": result.churn,
            "recommendation_id": result.recommendation_id,
            "note": result.note,
            "results": result.items,
        }
        return Response(self.OutputSerializer(body).data)


class ChurnJobCreateApi(APIView):
    """Start a churn job (train when needed, then score everyone) on the cpu queue."""

    permission_classes = [IsAuthenticated, IsAdminRole]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "ChurnJobInput"

        retrain = serializers.BooleanField(default=False, help_text="Train a new model first.")

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_churn",
        summary="Trigger churn scoring",
        request=InputSerializer,
        responses={202: JobOutputSerializer},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = job_start(
            kind=ChurnJobKind.CHURN_SCORE,
            task=churn_job_run,
            params=services.churn_job_params(retrain=body.validated_data["retrain"]),
            triggered_by=request.user,
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
