"""Routes of privacy's API, mounted at ``api/<version>/`` before recommender's."""

from django.urls import path

from . import api

app_name = "privacy-api"

urlpatterns = [
    path("customers/<str:customer_id>/export", api.CustomerExportApi.as_view(),
         name="customer-export"),
    path("privacy/audit", api.AuditEntryListApi.as_view(), name="audit-list"),
    path("privacy/forget-requests", api.ForgetRequestListApi.as_view(),
         name="forget-request-list"),
    path("privacy/reports", api.ReportListCreateApi.as_view(), name="report-list"),
    path("privacy/reports/<int:report_id>", api.ReportDetailApi.as_view(),
         name="report-detail"),
]  # fmt: skip
