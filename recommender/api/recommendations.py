"""Recommendation endpoints: for a customer, for a session, similar, bought together, trending.

Every answer carries a ``recommendation_id`` (logged with the returned product ids, so a later
click can be attributed to the list) and every item its sources, score components and a reason
in the product's own words. Product ids in query parameters and bodies are the merchant's; ids
the catalogue does not know are ignored there (a shop may send a product not synced yet), while
an unknown id in the path is a 404.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasReadScope, IsAdminRole
from jobs.api.serializers import JobOutputSerializer
from jobs.services.runs import job_start
from recommender.api import serializers as s
from recommender.choices import JobKind
from recommender.ingestion import records
from recommender.models import Customer, Product
from recommender.selectors.catalog import customer_get
from recommender.services import recommendations as service
from recommender.services.ingestion import product_pk_map
from recommender.tasks import train_signature
from recsite.api import serializers as shared
from recsite.api.catalog import (
    ProductOutputSerializer,
    customer_with_history_or_404,
    product_or_404,
)
from recsite.api.errors import RULE
from recsite.api.fields import (
    IdField,
    IdListField,
    StrictInputSerializer,
    TextField,
    TimestampField,
    WholeNumberField,
)
from recsite.api.query import query_input
from recsite.api.schema import refused_by_rule

MAX_K = 100
MAX_IDS = 200
# Characters of a comma-separated id list in a query parameter: room for MAX_IDS typical ids
# while the whole request line stays within what servers accept (8 KiB).
MAX_ID_LIST_LENGTH = 2000
_NOT_FOUND = OpenApiResponse(shared.DetailOutputSerializer, description="Unknown id.")
NO_ENGINE = OpenApiResponse(
    shared.DetailOutputSerializer, description="No recommendation engine has been fitted yet."
)


class EngineNotReadyError(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "engine_not_ready"


def serve(call: Any, **kwargs: Any) -> service.Recommendations:
    try:
        return call(**kwargs)
    except service.EngineNotReady as exc:
        raise EngineNotReadyError(str(exc)) from exc


# Serializers --------------------------------------------------------------------------------


class RecommendedItemOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "RecommendedItemOutput"

    product = ProductOutputSerializer()
    score = serializers.FloatField(help_text="Fused score; higher is better.")
    sources = serializers.ListField(
        child=serializers.CharField(),
        help_text="The candidate sources that proposed the product, strongest first "
        "(collaborative, semantic, session, trending, popularity, new_arrivals, social, "
        "sequential); exposure comes first on a product nobody has touched yet that fills an "
        "exposure slot.",
    )
    components = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Each source's weighted contribution to the score.",
    )
    reason = serializers.CharField(help_text="Why, in the product's words (the first reason).")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Every reason.")
    promoted = serializers.BooleanField(
        help_text="True when the product fills a promotion slot of a merchandising rule."
    )
    rule_ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Ids of the merchandising rules that moved the product (see /rules/); "
        "their effect is in the reasons.",
    )
    social_proof = serializers.IntegerField(
        required=False,
        help_text="Only with social_proof=true: how many of the customer's network (the people "
        "they follow or trust) touched the product.",
    )


class RecommendationOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "RecommendationOutput"

    recommendation_id = serializers.UUIDField(
        help_text="Send it back with clicks and purchases to attribute them to this list."
    )
    kind = serializers.CharField()
    config_version = serializers.IntegerField(
        allow_null=True, help_text="Recommendation configuration version that served."
    )
    engine_build = serializers.IntegerField(allow_null=True, help_text="Engine build that served.")
    experiment = serializers.IntegerField(
        allow_null=True,
        help_text="Id of the running experiment that served this list (see /experiments/); "
        "null outside experiments. Pass it and the variant to your own analytics.",
    )
    variant = serializers.CharField(
        allow_null=True, help_text="The experiment's variant that served; null outside one."
    )
    results = RecommendedItemOutputSerializer(many=True, source="items")


class CustomerRecommendationOutputSerializer(RecommendationOutputSerializer):
    class Meta:
        ref_name = "CustomerRecommendationOutput"

    customer_id = serializers.CharField()


class ProductRecommendationOutputSerializer(RecommendationOutputSerializer):
    class Meta:
        ref_name = "ProductRecommendationOutput"

    product_id = serializers.CharField()


def render(serializer: type[serializers.Serializer], result: Any, **extra: Any) -> Response:
    """The body ``serializer`` would produce for ``result``, built directly.

    ``serializer`` documents the shape (OpenAPI), and a test holds the two equal. Running the
    nested serializers on every request cost more than a tenth of the recommendations
    endpoint's time; product payloads now come from a per-process cache keyed by the product's
    version (:func:`s.product_payload`).
    """
    data = {
        "recommendation_id": str(result.recommendation_id),
        "kind": result.kind,
        "config_version": result.config_version,
        "engine_build": result.engine_build,
        "experiment": result.experiment,
        "variant": result.variant,
        "results": [
            {
                "product": s.product_payload(item.product),
                "score": float(item.score),
                "sources": list(item.sources),
                "components": {key: float(value) for key, value in item.components.items()},
                "reason": item.reason,
                "reasons": list(item.reasons),
                "promoted": bool(item.promoted),
                "rule_ids": [int(rule_id) for rule_id in item.rule_ids],
                **({} if item.social_proof is None else {"social_proof": int(item.social_proof)}),
            }
            for item in result.items
        ],
        **{key: str(value) for key, value in extra.items()},
    }
    return Response(data)


class VisitorInputSerializer(serializers.Serializer):
    """The visitor who will see a product list (similar, bought together, trending): optional.

    With one, a running experiment covering the list serves the visitor's variant (``experiment``
    and ``variant`` in the answer), the list's rotation applies, and the log records the visitor
    so their later events can be attributed to the list. Without one the list is the control's
    and counts for no experiment.
    """

    customer_id = IdField(
        required=False,
        help_text="The signed-in customer who will see the list (optional; preferred over "
        "session_id). An id the shop has sent no customer or event for yet is ignored, as "
        "if absent.",
    )
    session_id = TextField(
        required=False,
        max_length=records.MAX_ID_LENGTH,
        help_text="The anonymous visitor's session id, as sent with their events (optional): "
        "the visitor when there is no customer_id.",
    )


def visitor_of(data: dict[str, Any]) -> tuple[Customer | None, str]:
    """The customer (None for an id not known yet) and session id a product list names."""
    customer_id = data.get("customer_id")
    customer = customer_get(external_id=customer_id) if customer_id else None
    return customer, data.get("session_id", "")


def _pks(external_ids: list[str]) -> list[int]:
    if not external_ids:
        return []
    known = product_pk_map(external_ids=external_ids)
    return [known[pid] for pid in dict.fromkeys(external_ids) if pid in known]


_PRODUCT_ID = OpenApiParameter("product_id", str, OpenApiParameter.PATH, description="Product id.")


# Views --------------------------------------------------------------------------------------


class CustomerRecommendationsApi(APIView):
    """Recommendations for one customer, from their events as they are now."""

    permission_classes = [IsAuthenticated, HasReadScope]
    throttle_scope = "serving"  # A shop back end asks for every visitor: accounts/throttling.py

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerRecommendationsInput"

        k = WholeNumberField(min_value=1, max_value=MAX_K, default=10)
        category = TextField(
            required=False, max_length=255, help_text="Only products of this category."
        )
        exclude = IdListField(
            required=False,
            max_ids=MAX_IDS,
            max_length=MAX_ID_LIST_LENGTH,
            help_text="Comma-separated product ids never to return (e.g. those on the page).",
        )
        # DRF's metaclass pops declared fields, so Serializer.context is not shadowed.
        context = IdListField(  # type: ignore[assignment]
            required=False,
            max_ids=MAX_IDS,
            max_length=MAX_ID_LIST_LENGTH,
            help_text="Comma-separated ids of the products the customer is looking at now; "
            "they steer the session source and are not returned.",
        )
        social_proof = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Add social_proof to every item: how many of the customer's network "
            "touched it.",
        )

    @extend_schema(
        tags=["recommendations"],
        operation_id="customers_recommendations",
        summary="Recommendations for a customer",
        parameters=[
            InputSerializer,
            OpenApiParameter("customer_id", str, OpenApiParameter.PATH, description="Customer id."),
        ],
        responses={
            200: CustomerRecommendationOutputSerializer,
            404: _NOT_FOUND,
            503: NO_ENGINE,
        },
    )
    def get(self, request: Request, customer_id: str, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        customer, events = customer_with_history_or_404(customer_id)
        result = serve(
            service.customer_recommendations,
            customer=customer,
            events=events,
            k=data["k"],
            category=data.get("category"),
            exclude=_pks(data.get("exclude", [])),
            context=_pks(data.get("context", [])),
            with_social_proof=data["social_proof"],
        )
        return render(CustomerRecommendationOutputSerializer, result, customer_id=customer_id)


class SessionEventInputSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "SessionEventInput"

    product_id = IdField()
    event_type = serializers.ChoiceField(
        choices=[], default="view", help_text="One of the RECSITE_EVENT_TYPES setting."
    )
    timestamp = TimestampField(
        required=False, help_text="ISO 8601; without one the event counts as happening now."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when used, not at import: the setting may change.
        self.fields["event_type"].choices = list(settings.RECSITE_EVENT_TYPES)  # type: ignore[attr-defined]


class SessionRecommendationsApi(APIView):
    """Recommendations for an anonymous session, from the products it touched."""

    permission_classes = [IsAuthenticated, HasReadScope]
    throttle_scope = "serving"  # A shop back end asks for every visitor: accounts/throttling.py

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "SessionRecommendationsInput"

        product_ids = serializers.ListField(
            child=IdField(),
            required=False,
            max_length=MAX_IDS,
            help_text="Products of the session, oldest first (each counts as a view). "
            "Ids the catalogue does not know are ignored.",
        )
        events = serializers.ListField(
            child=SessionEventInputSerializer(),
            required=False,
            max_length=MAX_IDS,
            help_text="Or events. Either list must hold at least one product (422 otherwise).",
        )
        k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=10)
        category = TextField(required=False, max_length=255)
        exclude = serializers.ListField(child=IdField(), required=False, max_length=MAX_IDS)
        session_id = TextField(
            required=False,
            allow_blank=True,
            max_length=records.MAX_ID_LENGTH,
            help_text="The visitor's session id, as sent with its events: assigns the session "
            "to an experiment's variant and lets its later events be attributed to this list.",
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("product_ids") and not attrs.get("events"):
                raise serializers.ValidationError(
                    {"product_ids": "give product_ids or events (at least one product)"},
                    code=RULE,
                )
            return attrs

    @extend_schema(
        tags=["recommendations"],
        operation_id="recommendations_session",
        summary="Recommendations for a session (no customer needed)",
        request=InputSerializer,
        responses={
            200: RecommendationOutputSerializer,
            422: refused_by_rule("Neither product_ids nor events names a product."),
            503: NO_ENGINE,
        },
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        raw = [{"product_id": pid} for pid in data.get("product_ids", [])] + list(
            data.get("events", [])
        )
        products = product_pk_map(external_ids=[e["product_id"] for e in raw])
        by_pk = Product.objects.in_bulk(list(products.values()))
        events = [
            service.SessionEvent(
                product=by_pk[products[e["product_id"]]],
                event_type=e.get("event_type", "view"),
                occurred_at=e.get("timestamp"),
            )
            for e in raw
            if e["product_id"] in products
        ]
        result = serve(
            service.session_recommendations,
            events=events,
            k=data["k"],
            category=data.get("category"),
            exclude=_pks(data.get("exclude", [])),
            session_id=data.get("session_id", ""),
        )
        return render(RecommendationOutputSerializer, result)


class ProductBoughtTogetherApi(APIView):
    """Products bought in the same baskets as this one."""

    permission_classes = [IsAuthenticated, HasReadScope]
    throttle_scope = "serving"  # A shop back end asks for every visitor: accounts/throttling.py

    class InputSerializer(VisitorInputSerializer):
        class Meta:
            ref_name = "ProductBoughtTogetherInput"

        k = WholeNumberField(min_value=1, max_value=MAX_K, default=10)

    @extend_schema(
        tags=["recommendations"],
        operation_id="products_bought_together",
        summary="Frequently bought together",
        parameters=[InputSerializer, _PRODUCT_ID],
        responses={
            200: ProductRecommendationOutputSerializer,
            404: _NOT_FOUND,
            503: NO_ENGINE,
        },
    )
    def get(self, request: Request, product_id: str, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        product = product_or_404(product_id)
        customer, session_id = visitor_of(data)
        result = serve(
            service.bought_together,
            product=product,
            k=data["k"],
            customer=customer,
            session_id=session_id,
        )
        return render(ProductRecommendationOutputSerializer, result, product_id=product_id)


class ProductTrendingApi(APIView):
    """Trending products (as of the last fit), then popular ones."""

    permission_classes = [IsAuthenticated, HasReadScope]
    throttle_scope = "serving"  # A shop back end asks for every visitor: accounts/throttling.py

    class InputSerializer(VisitorInputSerializer):
        class Meta:
            ref_name = "ProductTrendingInput"

        k = WholeNumberField(min_value=1, max_value=MAX_K, default=10)
        category = TextField(required=False, max_length=255)

    @extend_schema(
        tags=["recommendations"],
        operation_id="products_trending",
        summary="Trending products",
        parameters=[InputSerializer],
        responses={200: RecommendationOutputSerializer, 503: NO_ENGINE},
    )
    def get(self, request: Request, **kwargs: Any) -> Response:
        data = query_input(self.InputSerializer, request)
        customer, session_id = visitor_of(data)
        result = serve(
            service.trending_products,
            k=data["k"],
            category=data.get("category"),
            customer=customer,
            session_id=session_id,
        )
        return render(RecommendationOutputSerializer, result)


class TrainJobCreateApi(APIView):
    """Start a fit of the recommendation engine on the cpu queue."""

    permission_classes = [IsAuthenticated, IsAdminRole]

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_train",
        summary="Trigger a fit of the recommendation engine",
        request=None,
        responses={202: JobOutputSerializer},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        job = job_start(kind=JobKind.TRAIN, task=train_signature, triggered_by=request.user)
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
