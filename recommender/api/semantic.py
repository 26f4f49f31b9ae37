"""Semantic features and the reindex job: search, similar products, POST jobs/reindex."""

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
from recommender.api import recommendations
from recommender.choices import JobKind
from recommender.models import Product
from recommender.services.recommendations import similar_products
from recommender.services.search import product_search
from recommender.tasks import reindex_signature
from recsite.api import serializers as shared
from recsite.api.catalog import ProductOutputSerializer, product_or_404
from recsite.api.fields import TextField, WholeNumberField
from recsite.api.query import query_input

MAX_K = 100
_NOT_FOUND = OpenApiResponse(shared.DetailOutputSerializer, description="Unknown id.")


class ScoredProductOutputSerializer(serializers.Serializer):
    product = ProductOutputSerializer()
    score = serializers.FloatField(help_text="Cosine similarity, -1 to 1.")


def _scored(pairs: list[tuple[Product, float]]) -> list[dict[str, Any]]:
    return [{"product": product, "score": round(score, 6)} for product, score in pairs]


class ProductSearchApi(APIView):
    """Semantic product search: products whose meaning is nearest to the query text."""

    permission_classes = [IsAuthenticated, HasReadScope]
    throttle_scope = "serving"  # A shop back end asks for every visitor: accounts/throttling.py

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProductSearchInput"

        q = TextField(max_length=500, help_text="Free text, e.g. 'red party bags'.")
        k = WholeNumberField(min_value=1, max_value=MAX_K, default=10)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProductSearchOutput"

        query = serializers.CharField()
        results = ScoredProductOutputSerializer(many=True)

    @extend_schema(
        tags=["catalogue"],
        operation_id="products_search",
        summary="Semantic product search",
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        query, k = data["q"], data["k"]
        results = product_search(query=query, k=k)
        return Response(self.OutputSerializer({"query": query, "results": _scored(results)}).data)


class ProductSimilarApi(APIView):
    """Similar products, never the product itself nor an inactive one.

    ``mode=semantic`` (the default) ranks by meaning through the vector index and needs no
    fitted engine; ``behavioural`` ranks by who bought both; ``hybrid`` blends the two.
    """

    permission_classes = [IsAuthenticated, HasReadScope]
    throttle_scope = "serving"  # A shop back end asks for every visitor: accounts/throttling.py

    class InputSerializer(recommendations.VisitorInputSerializer):
        class Meta:
            ref_name = "ProductSimilarInput"

        k = WholeNumberField(min_value=1, max_value=MAX_K, default=10)
        mode = serializers.ChoiceField(
            choices=["semantic", "behavioural", "hybrid"], default="semantic"
        )

    class OutputSerializer(recommendations.ProductRecommendationOutputSerializer):
        class Meta:
            ref_name = "ProductSimilarOutput"

        mode = serializers.CharField()

    @extend_schema(
        tags=["catalogue"],
        operation_id="products_similar",
        summary="Similar products (semantic, behavioural or hybrid)",
        parameters=[
            InputSerializer,
            OpenApiParameter("product_id", str, OpenApiParameter.PATH, description="Product id."),
        ],
        responses={
            200: OutputSerializer,
            404: _NOT_FOUND,
            503: recommendations.NO_ENGINE,
        },
    )
    def get(self, request: Request, product_id: str, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        product = product_or_404(product_id)
        mode = data["mode"]
        customer, session_id = recommendations.visitor_of(data)
        result = recommendations.serve(
            similar_products,
            product=product,
            k=data["k"],
            mode=mode,
            customer=customer,
            session_id=session_id,
        )
        return recommendations.render(
            self.OutputSerializer, result, product_id=product_id, mode=mode
        )


class ReindexJobCreateApi(APIView):
    """Start a reindex: embed new and changed products (gpu queue), then build the index (cpu)."""

    permission_classes = [IsAuthenticated, IsAdminRole]

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_reindex",
        summary="Trigger a reindex",
        request=None,
        responses={202: JobOutputSerializer},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        job = job_start(kind=JobKind.REINDEX, task=reindex_signature, triggered_by=request.user)
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
