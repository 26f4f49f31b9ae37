"""Admin of experiments: read their settings; changes go through the API or the pages."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Experiment, Variant
from .simulation import experiment_replay_rows_delete


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    can_delete = False
    readonly_fields = ["name", "position", "share", "config_version", "baseline", "rules"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "starts_at", "ends_at", "primary_metric", "results_at"]
    list_filter = ["state"]
    search_fields = ["name"]
    inlines = [VariantInline]
    # The service checks shares, versions and state changes: the admin only reads.
    readonly_fields = [
        "name", "description", "lists", "state", "salt", "starts_at", "ends_at",
        "primary_metric", "guardrails", "horizon_visitors", "copied_from", "created_by",
        "started_at", "stopped_at", "results_at", "attribution", "replay",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Experiment) -> None:
        # A replay's log rows name it without a foreign key: they go with it.
        if obj.replay is not None:
            experiment_replay_rows_delete(experiment=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset.filter(replay__isnull=False):
            experiment_replay_rows_delete(experiment=experiment)
        super().delete_queryset(request, queryset)
