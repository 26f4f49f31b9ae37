"""Output shapes every app's API shares: the error format (:mod:`recsite.api.errors`) and the
plain ``{"detail"}`` answer. Imports no app."""

from rest_framework import serializers


class ErrorItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(
        required=False, help_text="Position in 'items', for an error about one batch item."
    )
    field = serializers.CharField(help_text="The body field or query parameter at fault.")
    message = serializers.CharField()


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()
    # DRF's metaclass pops declared fields, so Serializer.errors is not shadowed at run time.
    errors = ErrorItemSerializer(many=True, required=False)  # type: ignore[assignment]


class DetailOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()
