"""Tagging's v1 API: the vocabulary, a product's tags, the review queue, decisions, interests,
and the tagging job. Errors use the house format (``recsite.api.errors``)."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasReadScope, IsAdminRole
from jobs.api.serializers import JobOutputSerializer
from jobs.services.runs import job_start
from recsite.api import serializers as s
from recsite.api.catalog import customer_or_404, product_or_404
from recsite.api.errors import InvalidRequest, error_entry
from recsite.api.fields import StrictInputSerializer, TextField, WholeNumberField
from recsite.api.lookups import MAX_PK
from recsite.api.pagination import DefaultPagination
from recsite.api.query import query_input
from recsite.api.schema import refused_by_rule
from tagging.models import ProductTagStatus, TaggingJobKind
from tagging.selectors import customer_interest_tags, product_tag_list, suggestion_queue, tag_get
from tagging.selectors import tag_list as tags_all
from tagging.services import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    TagError,
    product_tags_decide,
    tag_create,
)
from tagging.tasks import tag_job_run

from .permissions import CanManageTags, IsMerchandiser

_NOT_FOUND = OpenApiResponse(s.DetailOutputSerializer, description="Unknown id.")


class TagExists(InvalidRequest):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _refuse(error: TagError) -> InvalidRequest:
    """A tag service's refusal in the house format: 409 for a name already taken, else 422 (the
    input had the documented shape; the vocabulary refuses it)."""
    errors = [error_entry(field=error.field, message=error.message)]
    if error.message.startswith("a tag named"):
        return TagExists(detail=str(error), errors=errors)
    return InvalidRequest(detail=str(error), errors=errors, rule=True)


class TagOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    # DRF's Field has attributes named parent and source; the API still says "parent".
    parent = serializers.CharField(  # type: ignore[assignment]
        source="parent.name", allow_null=True, default=None
    )
    accepted_count = serializers.IntegerField(required=False)
    pending_count = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField()


class ProductTagOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product_id = serializers.CharField(source="product.external_id")
    tag = serializers.CharField(source="tag.name")
    status = serializers.ChoiceField(choices=ProductTagStatus.choices)
    source = serializers.CharField()  # type: ignore[assignment]
    confidence = serializers.FloatField(allow_null=True)
    model_version = serializers.CharField()
    decided_by = serializers.CharField(
        source="decided_by.get_username", allow_null=True, default=None
    )
    decided_at = serializers.DateTimeField(allow_null=True)


class InterestOutputSerializer(serializers.Serializer):
    tag = serializers.CharField()
    weight = serializers.FloatField(help_text="Share of the customer's weighted behaviour, 0-1.")
    events = serializers.IntegerField(help_text="Events on products with this tag.")


class TagListCreateApi(APIView):
    """The tag vocabulary. Creating ``a/b`` creates its parent ``a`` when missing."""

    permission_classes = [IsAuthenticated, CanManageTags]
    pagination_class = DefaultPagination

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "TagCreateInput"

        name = TextField(
            max_length=255,
            help_text='A path, e.g. "kitchen/mugs"; one of only slashes is refused (422).',
        )
        description = TextField(
            required=False,
            allow_blank=True,
            default="",
            max_length=2000,
            help_text="What belongs under this tag; zero-shot tagging reads it.",
        )

    @extend_schema(
        tags=["tags"],
        operation_id="tags_list",
        summary="List tags",
        responses={200: TagOutputSerializer(many=True)},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(tags_all(), request, view=self)
        return paginator.get_paginated_response(TagOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["tags"],
        operation_id="tags_create",
        summary="Create a tag",
        request=InputSerializer,
        responses={
            201: TagOutputSerializer,
            409: OpenApiResponse(s.ErrorOutputSerializer, description="A tag of that name exists."),
            422: refused_by_rule("The name is empty once its slashes and spaces are tidied."),
        },
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            tag = tag_create(**data.validated_data)
        except TagError as exc:
            raise _refuse(exc) from None
        return Response(TagOutputSerializer(tag).data, status=status.HTTP_201_CREATED)


class ProductTagsApi(APIView):
    """A product's tags with their status: accepted, pending (suggestions) and rejected."""

    permission_classes = [IsAuthenticated, HasReadScope]

    @extend_schema(
        tags=["tags"],
        operation_id="products_tags",
        summary="A product's tags",
        parameters=[
            OpenApiParameter("product_id", str, OpenApiParameter.PATH, description="Product id.")
        ],
        responses={200: ProductTagOutputSerializer(many=True), 404: _NOT_FOUND},
    )
    def get(self, request: Request, product_id: str, **kwargs: Any) -> Response:
        product = product_or_404(product_id)
        rows = product_tag_list(product=product)
        return Response(ProductTagOutputSerializer(rows, many=True).data)


class SuggestionListApi(APIView):
    """The review queue: auto-tagging's suggestions, most confident first."""

    permission_classes = [IsAuthenticated, HasReadScope]
    pagination_class = DefaultPagination

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SuggestionListInput"

        status = serializers.ChoiceField(
            choices=ProductTagStatus.choices, default=ProductTagStatus.PENDING
        )
        tag = TextField(
            required=False,
            max_length=255,
            help_text="Only this tag (its full name); an unknown tag is refused (422).",
        )

    @extend_schema(
        tags=["tags"],
        operation_id="tags_suggestions",
        summary="Tag suggestions to review",
        parameters=[InputSerializer],
        responses={
            200: ProductTagOutputSerializer(many=True),
            422: refused_by_rule("No tag has that name."),
        },
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        tag = None
        if "tag" in data:
            tag = tag_get(name=data["tag"])
            if tag is None:
                raise InvalidRequest(
                    detail=f"tag: no tag named {data['tag']!r}",
                    errors=[error_entry(field="tag", message="no such tag")],
                    rule=True,
                )
        rows = suggestion_queue(status=data["status"], tag=tag)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ProductTagOutputSerializer(page, many=True).data)


class SuggestionDecideApi(APIView):
    """Accept or reject product tags (bulk). Accepting ``a/b`` also accepts ``a``."""

    permission_classes = [IsAuthenticated, IsMerchandiser]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "SuggestionDecideInput"

        ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_PK),
            min_length=1,
            max_length=1000,
            help_text="Product tag ids (the ``id`` of the suggestions); an unknown one refuses "
            "the whole decision (422).",
        )
        decision = serializers.ChoiceField(
            choices=[ProductTagStatus.ACCEPTED, ProductTagStatus.REJECTED]
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SuggestionDecideOutput"

        decided = serializers.IntegerField()
        decision = serializers.CharField()

    @extend_schema(
        tags=["tags"],
        operation_id="tags_suggestions_decide",
        summary="Accept or reject suggestions",
        request=InputSerializer,
        responses={200: OutputSerializer, 422: refused_by_rule("An unknown product tag id.")},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = data.validated_data["decision"]
        try:
            decided = product_tags_decide(
                ids=data.validated_data["ids"], status=decision, user=request.user
            )
        except TagError as exc:
            raise _refuse(exc) from None
        return Response(self.OutputSerializer({"decided": decided, "decision": decision}).data)


class CustomerInterestsApi(APIView):
    """A customer's top tags from their behaviour, weighted like the interest vector."""

    permission_classes = [IsAuthenticated, HasReadScope]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerInterestsInput"

        k = WholeNumberField(min_value=1, max_value=100, default=10)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerInterestsOutput"

        customer_id = serializers.CharField()
        interests = InterestOutputSerializer(many=True)

    @extend_schema(
        tags=["tags"],
        operation_id="customers_interests",
        summary="A customer's interest tags",
        parameters=[
            InputSerializer,
            OpenApiParameter("customer_id", str, OpenApiParameter.PATH, description="Customer id."),
        ],
        responses={200: OutputSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, customer_id: str, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        customer = customer_or_404(customer_id)
        interests = customer_interest_tags(customer=customer, limit=data["k"])
        body = {
            "customer_id": customer_id,
            "interests": interests,
        }
        return Response(self.OutputSerializer(body).data)


class TagJobCreateApi(APIView):
    """Start auto-tagging (gpu queue): embed new/changed products, then suggest tags."""

    permission_classes = [IsAuthenticated, IsAdminRole]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "TagJobInput"

        only_new = serializers.BooleanField(
            default=False, help_text="Only products new or changed since the last tagging job."
        )
        threshold = serializers.FloatField(min_value=0, max_value=1, default=DEFAULT_THRESHOLD)
        top_k = serializers.IntegerField(min_value=1, max_value=20, default=DEFAULT_TOP_K)

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_tag",
        summary="Trigger auto-tagging",
        request=InputSerializer,
        responses={202: JobOutputSerializer},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_start(
            kind=TaggingJobKind.TAG,
            task=tag_job_run,
            params=data.validated_data,
            triggered_by=request.user,
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
