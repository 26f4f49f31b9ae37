"""Routes of churn's v1 API, mounted at ``api/<version>/`` by ``recsite/urls.py``."""

from django.urls import URLPattern

app_name = "churn-api"

urlpatterns: list[URLPattern] = []
