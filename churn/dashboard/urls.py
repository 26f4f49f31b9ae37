"""Dashboard pages of churn, mounted at ``dashboard/churn/`` by ``recsite/urls.py``."""

from . import views

app_name = "churn-dashboard"

urlpatterns = views.urlpatterns
