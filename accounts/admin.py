"""API tokens in Django's admin (for admins; people manage tokens on the dashboard)."""

from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at", "created_by"]
    search_fields = ["name", "prefix"]

    def has_add_permission(self, request, obj=None):
        # Tokens are created with `manage.py create_api_token`, which shows the raw value once.
        return False
