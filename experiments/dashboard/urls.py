"""Dashboard pages of experiments, mounted at ``dashboard/experiments/`` by ``recsite/urls.py``."""

from . import views

app_name = "experiments-dashboard"

urlpatterns = views.urlpatterns
