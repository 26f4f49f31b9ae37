"""Routes of the job history, mounted at ``api/<version>/`` by ``recsite/urls.py``.

The endpoints that start a job belong to the app that owns its kind and share the ``jobs/``
prefix (see :mod:`jobs.api.views`); ``jobs/<id>/`` takes digits only, so it never shadows them.
"""

from django.urls import path

from . import views

app_name = "jobs-api"

urlpatterns = [
    path("jobs/", views.JobViewSet.as_view({"get": "list"}), name="job-list"),
    path("jobs/<int:pk>/", views.JobViewSet.as_view({"get": "retrieve"}), name="job-detail"),
]
