"""Dashboard pages of privacy, mounted at ``dashboard/privacy/`` by ``recsite/urls.py``."""

from . import views

app_name = "privacy-dashboard"

urlpatterns = views.urlpatterns
