"""Dashboard pages of tagging, mounted under ``dashboard/`` by ``recsite/urls.py``."""

from django.urls import URLPattern

app_name = "tagging-dashboard"

urlpatterns: list[URLPattern] = []
