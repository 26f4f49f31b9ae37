"""Dashboard pages (merchandiser dashboard issue)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
