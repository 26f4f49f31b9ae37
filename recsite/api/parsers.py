"""Request body parsing with a size limit.

DRF reads the body stream itself, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applies to
API requests; without this a client could make a process buffer any amount of JSON.
"""

from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        limit = settings.RECSITE_API_MAX_BODY_BYTES
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if length > limit:
            raise RequestTooLarge(
                f"Request body is {length:,} bytes; the limit is {limit:,} "
                "(RECSITE_API_MAX_BODY_BYTES). Send smaller batches."
            )
        return super().parse(stream, media_type, parser_context)
