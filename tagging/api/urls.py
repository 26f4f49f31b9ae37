"""Routes of tagging's v1 API, mounted at ``api/<version>/`` by ``recsite/urls.py``.

They are included before recommender's routes. None ends in a slash after an id, so none can be
shadowed by (or shadow) ``products/<product_id>/`` or ``customers/<customer_id>/``.
"""

from django.urls import path

from . import views

app_name = "tagging-api"

urlpatterns = [
    path("tags/", views.TagListCreateApi.as_view(), name="tag-list"),
    path("tags/suggestions", views.SuggestionListApi.as_view(), name="suggestion-list"),
    path("tags/suggestions/decide", views.SuggestionDecideApi.as_view(), name="suggestion-decide"),
    path("products/<str:product_id>/tags", views.ProductTagsApi.as_view(), name="product-tags"),
    path(
        "customers/<str:customer_id>/interests",
        views.CustomerInterestsApi.as_view(),
        name="customer-interests",
    ),
    path("jobs/tag", views.TagJobCreateApi.as_view(), name="job-tag"),
]
