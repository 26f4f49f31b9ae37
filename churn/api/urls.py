"""Routes of churn's v1 API, mounted at ``api/<version>/`` by ``recsite/urls.py``.

Included before recommender's routes: ``customers/at-risk`` comes first so that "at-risk" is
never taken for a customer id, and ``customers/<id>/churn`` is not shadowed by
``customers/<id>/``.
"""

from django.urls import path

from . import views

app_name = "churn-api"

urlpatterns = [
    path("customers/at-risk", views.AtRiskListApi.as_view(), name="customer-at-risk"),
    path(
        "customers/<str:customer_id>/churn",
        views.CustomerChurnApi.as_view(),
        name="customer-churn",
    ),
    path(
        "customers/<str:customer_id>/win-back",
        views.CustomerWinBackApi.as_view(),
        name="customer-win-back",
    ),
    path("jobs/churn", views.ChurnJobCreateApi.as_view(), name="job-churn"),
]
