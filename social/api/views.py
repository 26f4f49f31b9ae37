"""The social API: relationships in batches (idempotent), parsed by the shared row parser."""

from dataclasses import asdict
from functools import partial
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasIngestScope
from recsite.api.batches import batch_items, batch_parse, batch_refuse
from recsite.api.parsers import BoundedJSONParser
from recsite.api.schema import refused_by_rule
from social.api import serializers as s
from social.records import parse_relationship
from social.services import relationships_upsert


class RelationshipBatchApi(APIView):
    permission_classes = [IsAuthenticated, HasIngestScope]
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="relationships_batch",
        summary="Record relationships between customers",
        description="Creates new edges (customer -> target, per type) and updates the weight "
        "of known ones; replaying a batch changes nothing. A friendship is two edges. Unknown "
        "customers are created on first sight, as events do. All or nothing.",
        request=s.RelationshipBatchInputSerializer,
        responses={
            200: s.RelationshipCountsOutputSerializer,
            422: refused_by_rule(
                "A customer related to themself, a weight not > 0 or above 1e6, or a "
                "created_at more than a day ahead or outside years 1-9999 in UTC."
            ),
        },
        tags=["ingestion"],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items = batch_items(request.data)
        parse = partial(parse_relationship, now=timezone.now())
        records, _, errors = batch_parse(items, parse, id_field=None)
        if errors:
            raise batch_refuse(errors, total=len(items))
        counts = relationships_upsert(records=records)
        return Response(asdict(counts))
