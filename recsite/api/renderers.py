"""The API's JSON renderer."""

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer


class SafeJSONRenderer(JSONRenderer):
    """DRF's renderer (UTF-8 text, no escapes), falling back to ASCII escapes for a value that
    UTF-8 cannot encode: an unpaired surrogate stored before ingestion refused them must not turn
    every read of its record into a 500. Only such a response pays for the second pass."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            self.ensure_ascii = True  # type: ignore[misc]  # This instance serves one response.
            return super().render(data, accepted_media_type, renderer_context)
