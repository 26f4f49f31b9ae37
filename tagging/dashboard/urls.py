"""Dashboard pages of tagging, mounted at ``dashboard/tags/`` by ``recsite/urls.py``."""

from django.urls import path

from . import views

app_name = "tagging-dashboard"

urlpatterns = [
    path("", views.review, name="review"),
    path("vocabulary/", views.vocabulary, name="vocabulary"),
    path(
        "fragments/customers/<str:customer_id>/interests",
        views.customer_interests,
        name="customer-interests",
    ),
    path("fragments/products/<str:product_id>/tags", views.product_tags, name="product-tags"),
]
