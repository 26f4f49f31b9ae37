"""Routes of tagging's v1 API, mounted at ``api/<version>/`` by ``recsite/urls.py``."""

from django.urls import URLPattern

app_name = "tagging-api"

urlpatterns: list[URLPattern] = []
