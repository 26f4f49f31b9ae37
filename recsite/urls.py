"""The project's URLs: every app's API, dashboard and pages, health, metrics and the API docs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import health, metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/serving", health.serving, name="health-serving"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's settings as a script file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("dashboard/tags/", include("tagging.dashboard.urls")),
    path("dashboard/churn/", include("churn.dashboard.urls")),
    path("dashboard/social/", include("social.dashboard.urls")),
    path("dashboard/experiments/", include("experiments.dashboard.urls")),
    path("dashboard/privacy/", include("privacy.dashboard.urls")),
    path("dashboard/", include("recommender.dashboard.urls")),
    path("api/<str:version>/", include("jobs.api.urls")),
    path("api/<str:version>/", include("tagging.api.urls")),
    path("api/<str:version>/", include("churn.api.urls")),
    # Before recommender's: its customers/<id>/ route takes the rest of the path.
    path("api/<str:version>/", include("privacy.urls")),
    path("api/<str:version>/", include("social.api.urls")),
    path("api/<str:version>/", include("experiments.api.urls")),
    path("api/<str:version>/", include("recommender.api.urls")),
]

# Under /api/ a URL that names no endpoint, or a failure, answers JSON in the API's error format.
handler400 = "recsite.api.errors.bad_request"
handler404 = "recsite.api.errors.not_found"
handler500 = "recsite.api.errors.server_error"
