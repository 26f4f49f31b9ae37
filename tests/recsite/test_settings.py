import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

from recsite.celery import app


def test_every_project_task_has_a_queue_route():
    app.loader.import_default_modules()
    # Every app of this repository, not a list to keep up to date by hand.
    ours = sorted(
        c.name for c in apps.get_app_configs() if Path(c.path).parent == settings.BASE_DIR
    )
    project_tasks = {name for name in app.tasks if name.split(".")[0] in ours}
    assert ours == ["accounts", "churn", "jobs", "recommender", "tagging"]
    assert {name.split(".")[0] for name in project_tasks} == {"churn", "recommender", "tagging"}
    assert project_tasks - set(settings.CELERY_TASK_ROUTES) == set()


def test_celery_is_configured_for_idempotent_late_acknowledged_tasks():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"


def test_every_variable_the_settings_read_is_in_the_env_example():
    from tests.conftest import REPO_ROOT

    settings_source = (REPO_ROOT / "recsite" / "settings" / "base.py").read_text()
    example = (REPO_ROOT / ".env.example").read_text()
    read = set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", settings_source))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))

    assert "RECSITE_API_RATE_SERVING" in read
    assert read - listed == set()
