"""The v1 API: batch ingestion, catalogue reads, the right to be forgotten and job history.

Views parse, call one service or selector, and render. Batch items are checked by the shared
row parser (``recommender.ingestion.records``), the same one the file importers use.
"""

from dataclasses import asdict
from functools import partial
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasIngestScope, HasReadScope, ReadOrIngestByMethod
from recommender.api import serializers as s
from recommender.api.filters import CustomerFilter, EventFilter, ProductFilter
from recommender.ingestion.records import (
    parse_customer,
    parse_event,
    parse_product,
)
from recommender.models import Customer, Product
from recommender.selectors.catalog import (
    customer_event_counts,
    customer_list,
    event_list,
    product_list,
)
from recommender.services.ingestion import (
    ProductsDeleted,
    customer_attribute_policy,
    customer_forget,
    customers_upsert,
    events_insert,
    events_unknown_products,
    product_delete,
    product_pk_map,
    products_upsert,
)
from recsite.api import serializers as shared
from recsite.api.batches import batch_items, batch_parse, batch_refuse
from recsite.api.catalog import ProductOutputSerializer, customer_or_404, product_or_404
from recsite.api.errors import error_entry
from recsite.api.pagination import EventCursorPagination
from recsite.api.parsers import BoundedJSONParser
from recsite.api.schema import refused_by_rule

_NOT_FOUND = OpenApiResponse(shared.DetailOutputSerializer, description="Unknown id.")


# Batches ---------------------------------------------------------------------------------------


class ProductBatchApi(APIView):
    permission_classes = [IsAuthenticated, HasIngestScope]
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="products_batch",
        summary="Create or update products",
        description="Upsert by product_id: new ids are created, changed products updated, "
        "identical ones left alone. All or nothing.",
        request=s.ProductBatchInputSerializer,
        responses={
            200: s.UpsertCountsOutputSerializer,
            422: refused_by_rule(
                "A product_id repeated in the batch, or refused text inside 'attributes'."
            ),
        },
        tags=["ingestion"],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items = batch_items(request.data)
        records, _, errors = batch_parse(items, parse_product, id_field="product_id")
        if errors:
            raise batch_refuse(errors, total=len(items))
        counts = products_upsert(records=records)
        return Response(asdict(counts))


class CustomerBatchApi(APIView):
    permission_classes = [IsAuthenticated, HasIngestScope]
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="customers_batch",
        summary="Create or update customers",
        description="Upsert by customer_id. All or nothing.",
        request=s.CustomerBatchInputSerializer,
        responses={
            200: s.UpsertCountsOutputSerializer,
            422: refused_by_rule(
                "A customer_id repeated in the batch, refused text inside 'attributes', or an "
                "attribute the allow-list refuses: a name not in RECSITE_CUSTOMER_ATTRIBUTES, "
                "or a value that looks like an e-mail address or a phone number "
                "(docs/privacy.md)."
            ),
        },
        tags=["ingestion"],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items = batch_items(request.data)
        parse = partial(parse_customer, policy=customer_attribute_policy())
        records, _, errors = batch_parse(items, parse, id_field="customer_id")
        if errors:
            raise batch_refuse(errors, total=len(items))
        counts = customers_upsert(records=records)
        return Response(asdict(counts))


class EventBatchApi(APIView):
    permission_classes = [IsAuthenticated, HasIngestScope]
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="events_batch",
        summary="Record behaviour events",
        description="Inserts events whose event_id is new; replaying a batch changes nothing "
        "and counts its events as duplicates. Products must be known; customers are created "
        "on first sight. All or nothing.",
        request=s.EventBatchInputSerializer,
        responses={
            200: s.EventInsertCountsOutputSerializer,
            422: refused_by_rule(
                "An unknown product, a timestamp more than a day ahead or outside years "
                "1-9999 in UTC, or an event without the product (or, for a search, the query) "
                "its type needs."
            ),
        },
        tags=["ingestion"],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items = batch_items(request.data)
        parse = partial(parse_event, event_types=settings.RECSITE_EVENT_TYPES, now=timezone.now())
        records, positions, errors = batch_parse(items, parse, id_field=None)
        # One query for every product of the batch, whatever its size.
        product_map = product_pk_map(
            external_ids={r.product_id for r in records if r.product_id is not None}
        )
        unknown = events_unknown_products(records=records, product_map=product_map)
        if unknown:
            errors.extend(
                (error_entry(index=positions[i], field=e.field, message=e.message), e.rule)
                for i, e in unknown
            )
            errors.sort(key=lambda e: e[0]["index"])  # Stable: an item's own order is kept.
        if errors:
            raise batch_refuse(errors, total=len(items))
        try:
            counts = events_insert(records=records, product_map=product_map)
        except ProductsDeleted as exc:  # Deleted since product_pk_map read them.
            remaining = {k: v for k, v in product_map.items() if k not in exc.external_ids}
            gone = events_unknown_products(records=records, product_map=remaining)
            raise batch_refuse(
                [
                    (error_entry(index=positions[i], field=e.field, message=e.message), e.rule)
                    for i, e in gone
                ],
                total=len(items),
            ) from None
        return Response(asdict(counts))


# Reads -----------------------------------------------------------------------------------------


def _external_id_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.PATH, description=description)


@extend_schema(tags=["catalogue"])
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    # Reading needs 'read'; deleting a product is a write and needs 'ingest'.
    permission_classes = [IsAuthenticated, ReadOrIngestByMethod]
    serializer_class = ProductOutputSerializer
    filterset_class = ProductFilter
    lookup_url_kwarg = "product_id"

    def get_queryset(self) -> Any:
        return product_list()

    def get_object(self) -> Product:
        return product_or_404(self.kwargs[self.lookup_url_kwarg])

    @extend_schema(summary="List products")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One product",
        parameters=[_external_id_parameter("product_id", "The merchant's product id.")],
        responses={200: ProductOutputSerializer, 404: _NOT_FOUND},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Delete a product",
        description="Deletes the product and every event about it (its tags and embedding "
        "too). It leaves every list at once; the engine and the vector index forget it at "
        "their next build. To keep a product's history, deactivate it instead "
        "(is_active: false in products/batch).",
        parameters=[_external_id_parameter("product_id", "The merchant's product id.")],
        responses={200: s.ProductDeleteOutputSerializer, 404: _NOT_FOUND},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        deleted = product_delete(product=self.get_object())
        return Response({"deleted_events": deleted}, status=status.HTTP_200_OK)


@extend_schema(tags=["customers"])
class CustomerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    # Reading needs 'read'; forgetting a customer is a write and needs 'ingest'.
    permission_classes = [IsAuthenticated, ReadOrIngestByMethod]
    serializer_class = s.CustomerOutputSerializer
    filterset_class = CustomerFilter
    lookup_url_kwarg = "customer_id"

    def get_queryset(self) -> Any:
        return customer_list()

    def get_object(self) -> Customer:
        return customer_or_404(self.kwargs[self.lookup_url_kwarg])

    @extend_schema(summary="List customers")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One customer, with event counts by type",
        parameters=[_external_id_parameter("customer_id", "The merchant's customer id.")],
        responses={200: s.CustomerDetailOutputSerializer, 404: _NOT_FOUND},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        customer.event_counts = customer_event_counts(customer=customer)  # type: ignore[attr-defined]
        return Response(s.CustomerDetailOutputSerializer(customer).data)

    @extend_schema(
        summary="Forget a customer",
        description="Right to be forgotten: deletes the customer and every event of theirs.",
        parameters=[_external_id_parameter("customer_id", "The merchant's customer id.")],
        responses={200: s.CustomerForgetOutputSerializer, 404: _NOT_FOUND},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        deleted = customer_forget(customer=customer)
        return Response({"deleted_events": deleted}, status=status.HTTP_200_OK)


@extend_schema(tags=["events"])
class EventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, HasReadScope]
    serializer_class = s.EventOutputSerializer
    filterset_class = EventFilter
    pagination_class = EventCursorPagination

    def get_queryset(self) -> Any:
        return event_list()

    @extend_schema(
        summary="List events, newest first",
        responses={
            200: s.EventOutputSerializer(many=True),
            422: refused_by_rule("A cursor this server did not make (use 'next' or 'previous')."),
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
