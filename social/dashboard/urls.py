"""Dashboard fragments of the social app, mounted at ``dashboard/social/`` (recsite/urls.py)."""

from . import views

app_name = "social-dashboard"

urlpatterns = views.urlpatterns
