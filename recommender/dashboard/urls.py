"""The merchandiser dashboard's routes, mounted at ``dashboard/`` by ``recsite/urls.py``.

Each page module owns its own ``urlpatterns``; this module only joins them under one namespace.
"""

from . import evaluation, inspector, rules, tuning, views

app_name = "dashboard"

urlpatterns = [
    *views.urlpatterns,
    *inspector.urlpatterns,
    *tuning.urlpatterns,
    *evaluation.urlpatterns,
    *rules.urlpatterns,
]
