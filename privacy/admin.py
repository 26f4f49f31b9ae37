"""Admin pages of the audit log and the forget requests: read-only (append-only log)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.roles import Scope
from accounts.selectors import user_scopes

from .models import AuditEntry, ForgetRequest


class _ReadOnly(admin.ModelAdmin):
    """Admins (the role, or superusers) read; nobody adds, changes or deletes."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return Scope.ADMIN in user_scopes(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return Scope.ADMIN in user_scopes(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(_ReadOnly):
    list_display = ["at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]
    date_hierarchy = "at"


@admin.register(ForgetRequest)
class ForgetRequestAdmin(_ReadOnly):
    list_display = ["id", "requested_at", "requested_by", "deadline_at", "applied_at", "job"]
    list_filter = ["applied_at"]
    search_fields = ["customer_key"]
