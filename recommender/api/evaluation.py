"""Offline evaluation jobs: an admin starts one; the worker stores an EvaluationRun."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdminRole
from jobs.api.serializers import JobOutputSerializer
from jobs.services.runs import job_start
from recommender.choices import JobKind
from recommender.services.evaluation_runs import DEFAULT_SAMPLE, MAX_SAMPLE
from recommender.tasks import evaluate
from recsite.api.fields import StrictInputSerializer


class EvaluateJobCreateApi(APIView):
    """Start an offline evaluation of the active configuration (cpu queue).

    Leave-last-out on a seeded sample of customers, with the baselines side by side; the result
    is stored as an evaluation run of the active configuration version (the dashboard's
    evaluation page charts them).
    """

    permission_classes = [IsAuthenticated, IsAdminRole]

    class InputSerializer(StrictInputSerializer):
        sample = serializers.IntegerField(
            required=False,
            default=DEFAULT_SAMPLE,
            min_value=1,
            max_value=MAX_SAMPLE,
            help_text="Customers scored (drawn from the held-out ones; all when fewer).",
        )
        seed = serializers.IntegerField(
            required=False,
            default=0,
            min_value=0,
            max_value=2**32 - 1,
            help_text="Seed of the customer draw.",
        )

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_evaluate",
        summary="Trigger an offline evaluation of the active configuration",
        request=InputSerializer,
        responses={202: JobOutputSerializer},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job = job_start(
            kind=JobKind.EVALUATE,
            task=evaluate,
            params=dict(params.validated_data),
            triggered_by=request.user,
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
