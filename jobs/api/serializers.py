"""How the API shows a job (the list, the detail, and every app's "start a job" answer)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job
from jobs.registry import job_kind_choices


class JobOutputSerializer(serializers.ModelSerializer):
    # The kinds apps registered (the column holds no choice list: jobs.registry).
    kind = serializers.ChoiceField(choices=job_kind_choices())
    triggered_by = serializers.SerializerMethodField()
    duration = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "state", "params", "triggered_by", "progress", "counts", "error",
            "created_at", "started_at", "heartbeat_at", "finished_at", "duration",
        ]  # fmt: skip

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_triggered_by(self, job: Job) -> str | None:
        return job.triggered_by.get_username() if job.triggered_by else None

    @extend_schema_field(
        serializers.FloatField(
            allow_null=True,
            help_text="Seconds from start to finish; while running, to the last heartbeat; "
            "null before it starts.",
        )
    )
    def get_duration(self, job: Job) -> float | None:
        return job.duration_seconds
