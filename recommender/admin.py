"""Django admin of recommender: the vector index builds, read-only, with the rollback action
(the same service as ``manage.py rollback_index``)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import IndexBuild
from .services.index import index_build_rollback


@admin.register(IndexBuild)
class IndexBuildAdmin(admin.ModelAdmin):
    list_display = [
        "id", "status", "model_name", "item_count", "dimension", "self_check_recall",
        "started_at", "finished_at",
    ]  # fmt: skip
    list_filter = ["status", "model_name"]
    actions = ["rollback"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # Builds are made by reindex jobs.

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # Pruning removes files and rows' status together (jobs.services.artifacts).

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in IndexBuild._meta.fields]

    @admin.action(description="Serve this build again (roll back)", permissions=["change"])
    def rollback(self, request: HttpRequest, queryset: QuerySet[IndexBuild]) -> None:
        builds = list(queryset[:2])
        if len(builds) != 1:
            self.message_user(request, "Select exactly one index build.", messages.ERROR)
            return
        try:
            build = index_build_rollback(build=builds[0])
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Index build {build.pk} serves again.", messages.SUCCESS)
