import importlib.util
import re
from pathlib import Path

from django.apps import apps as django_apps
from django.conf import settings

from recsite.celery import app

# The queues the workers consume (docs/deployment.md: the cpu worker takes default and cpu, the
# gpu worker gpu; the demo's single worker all three).
WORKER_QUEUES = {"default", "cpu", "gpu"}


def _project_apps() -> set[str]:
    """Installed apps that live in this repository (whatever their number)."""
    from tests.conftest import REPO_ROOT

    return {
        config.name
        for config in django_apps.get_app_configs()
        if Path(config.path).is_relative_to(REPO_ROOT)
    }


def test_every_task_of_every_app_is_routed_to_a_queue_a_worker_consumes():
    app.loader.import_default_modules()
    apps = _project_apps()
    tasks = {name for name in app.tasks if name.split(".")[0] in apps}
    with_tasks = {name.split(".")[0] for name in tasks}
    # Every app that has a tasks module has its tasks registered (so all of them are checked).
    assert with_tasks == {a for a in apps if importlib.util.find_spec(f"{a}.tasks") is not None}

    # Where Celery's router sends each task when it is started, e.g. by a job or by beat.
    queues = {name: app.amqp.router.route({}, name)["queue"].name for name in tasks}

    unrouted = {name for name in tasks if name not in settings.CELERY_TASK_ROUTES}
    assert unrouted == set()  # Not left to the default queue by omission.
    assert {name: q for name, q in queues.items() if q not in WORKER_QUEUES} == {}


def test_every_variable_the_settings_read_is_in_the_env_example():
    from tests.conftest import REPO_ROOT

    settings_source = (REPO_ROOT / "recsite" / "settings" / "base.py").read_text()
    example = (REPO_ROOT / ".env.example").read_text()
    read = set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", settings_source))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))

    assert "RECSITE_API_RATE_SERVING" in read
    assert read - listed == set()
