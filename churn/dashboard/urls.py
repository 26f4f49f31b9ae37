"""Dashboard pages of churn, mounted under ``dashboard/`` by ``recsite/urls.py``."""

from django.urls import URLPattern

app_name = "churn-dashboard"

urlpatterns: list[URLPattern] = []
