"""Routes of the experiments API, mounted at ``api/<version>/`` by ``recsite/urls.py``."""

from django.urls import path

from . import views

app_name = "experiments-api"

urlpatterns = [
    path("experiments/", views.ExperimentListCreateApi.as_view(), name="experiment-list"),
    path(
        "experiments/<int:experiment_id>/",
        views.ExperimentDetailApi.as_view(),
        name="experiment-detail",
    ),
    path(
        "experiments/<int:experiment_id>/start",
        views.ExperimentStartApi.as_view(),
        name="experiment-start",
    ),
    path(
        "experiments/<int:experiment_id>/stop",
        views.ExperimentStopApi.as_view(),
        name="experiment-stop",
    ),
    path(
        "experiments/<int:experiment_id>/copy",
        views.ExperimentCopyApi.as_view(),
        name="experiment-copy",
    ),
    path(
        "experiments/<int:experiment_id>/promote",
        views.ExperimentPromoteApi.as_view(),
        name="experiment-promote",
    ),
    path(
        "experiments/<int:experiment_id>/results",
        views.ExperimentResultsApi.as_view(),
        name="experiment-results",
    ),
    path(
        "experiments/<int:experiment_id>/replay",
        views.ExperimentReplayApi.as_view(),
        name="experiment-replay",
    ),
    path(
        "experiments/<int:experiment_id>/refresh",
        views.ExperimentRefreshApi.as_view(),
        name="experiment-refresh",
    ),
]
