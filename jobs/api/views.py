"""The job history: ``jobs/`` (newest first, filtered by kind and state) and ``jobs/<id>/``.

Each app serves the endpoint that starts its own kinds beside these, under the same ``jobs/``
prefix and OpenAPI tag (``jobs/reindex``, ``jobs/train``, ``jobs/evaluate`` in recommender,
``jobs/tag`` in tagging, ``jobs/churn`` in churn), answering with
:class:`~jobs.api.serializers.JobOutputSerializer`.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import IsAdminRole
from jobs.models import Job
from jobs.selectors import job_get, job_list
from recsite.api.lookups import int_or_404
from recsite.api.serializers import DetailOutputSerializer

from .filters import JobFilter
from .serializers import JobOutputSerializer

_NOT_FOUND = OpenApiResponse(DetailOutputSerializer, description="Unknown id.")


@extend_schema(tags=["jobs"])
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsAuthenticated, IsAdminRole]
    serializer_class = JobOutputSerializer
    filterset_class = JobFilter
    queryset = Job.objects.none()  # For the schema's path parameter type; see get_queryset.

    def get_queryset(self) -> Any:
        return job_list()

    def get_object(self) -> Job:
        job = job_get(pk=int_or_404(self.kwargs["pk"], "Job"))
        if job is None:
            raise NotFound(f"Job {self.kwargs['pk']} not found.")
        return job

    @extend_schema(summary="Job history, newest first")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One job", responses={200: JobOutputSerializer, 404: _NOT_FOUND})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)
