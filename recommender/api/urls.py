"""Routes of the v1 API, mounted at ``api/<version>/`` by ``recsite/urls.py``.

Batch endpoints have no trailing slash (``products/batch``), so they can never collide with a
product whose id is "batch" (``products/batch/``).

Merchant ids are one path segment (their alphabet has no ``/``: ``recommender.ingestion.values``).
The detail routes of products and customers (read, delete) take the rest of the path even so,
so a record stored before that alphabet, whose id holds a ``/`` (sent as ``%2F``), can still be
read and deleted.
"""

from typing import Any

from django.urls import include, path

from accounts import api as accounts_api

from . import evaluation, recommendations, rules, semantic, views

app_name = "api"

_list: dict[str, Any] = {"get": "list"}

urlpatterns = [
    path("products/batch", views.ProductBatchApi.as_view(), name="product-batch"),
    path("customers/batch", views.CustomerBatchApi.as_view(), name="customer-batch"),
    path("events/batch", views.EventBatchApi.as_view(), name="event-batch"),
    path("products/", views.ProductViewSet.as_view(_list), name="product-list"),
    # Before products/<product_id>/: "search" is a route, not a product id.
    path("products/search", semantic.ProductSearchApi.as_view(), name="product-search"),
    path(
        "products/trending", recommendations.ProductTrendingApi.as_view(), name="product-trending"
    ),
    path(
        "products/<str:product_id>/bought-together",
        recommendations.ProductBoughtTogetherApi.as_view(),
        name="product-bought-together",
    ),
    path(
        "products/<str:product_id>/similar",
        semantic.ProductSimilarApi.as_view(),
        name="product-similar",
    ),
    path(
        "products/<path:product_id>/",
        views.ProductViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="product-detail",
    ),
    path("customers/", views.CustomerViewSet.as_view(_list), name="customer-list"),
    path(
        "customers/<str:customer_id>/recommendations",
        recommendations.CustomerRecommendationsApi.as_view(),
        name="customer-recommendations",
    ),
    path(
        "recommendations/session",
        recommendations.SessionRecommendationsApi.as_view(),
        name="recommendations-session",
    ),
    path(
        "customers/<path:customer_id>/",
        views.CustomerViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="customer-detail",
    ),
    path("events/", views.EventViewSet.as_view(_list), name="event-list"),
    path("jobs/reindex", semantic.ReindexJobCreateApi.as_view(), name="job-reindex"),
    path("jobs/train", recommendations.TrainJobCreateApi.as_view(), name="job-train"),
    path("jobs/evaluate", evaluation.EvaluateJobCreateApi.as_view(), name="job-evaluate"),
    # The job history (jobs/, jobs/<id>/) is the jobs app's: jobs/api/urls.py.
    path("rules/", rules.RuleListCreateApi.as_view(), name="rule-list"),
    path("rules/<int:rule_id>/", rules.RuleDetailApi.as_view(), name="rule-detail"),
    # Token management lives with the accounts app; it shares this prefix and version.
    path("", include(accounts_api.urlpatterns)),
]
