"""Routes of the social API, mounted beside recommender's under ``api/<version>/``."""

from django.urls import path

from . import views

app_name = "social-api"

urlpatterns = [
    path("relationships/batch", views.RelationshipBatchApi.as_view(), name="relationship-batch"),
]
