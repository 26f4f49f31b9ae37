"""privacy's reads: forget requests and the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEntry, ForgetRequest


def forget_request_list() -> QuerySet[ForgetRequest]:
    return ForgetRequest.objects.select_related("job").order_by("-requested_at", "-id")


def audit_entry_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-at", "-id")
