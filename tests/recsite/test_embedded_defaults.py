"""With no environment, recsite runs embedded: SQLite and a filesystem broker in its var dir."""

import json
import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL,
    "queue_dir": getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("data_folder_in"),
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "debug": settings.DEBUG,
}))
"""


def _settings_in_clean_env(tmp_path, **extra: str) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": "probe",
        "RECSITE_VAR_DIR": str(tmp_path),
        **extra,
    }
    code = "import django; django.setup()\n" + PROBE
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_no_environment_means_sqlite_and_a_filesystem_broker_with_a_real_worker(tmp_path):
    probe = _settings_in_clean_env(tmp_path)
    assert probe == {
        "engine": "django.db.backends.sqlite3",
        "db_name": str(tmp_path / "recsite.sqlite3"),
        "broker": "filesystem://",
        "queue_dir": str(tmp_path / "broker" / "queue"),
        "eager": False,
        "debug": False,
    }


def test_environment_selects_postgresql_and_redis(tmp_path):
    probe = _settings_in_clean_env(
        tmp_path,
        DATABASE_URL="postgres://shop@db.internal:5432/recsite",
        CELERY_BROKER_URL="redis://cache.internal:6379/1",
    )
    assert probe["engine"] == "recsite.db.postgresql"
    assert probe["db_name"] == "recsite"
    assert probe["broker"] == "redis://cache.internal:6379/1"


def test_missing_secret_key_fails_loudly(tmp_path):
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
           "RECSITE_VAR_DIR": str(tmp_path)}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1
    assert "Set the DJANGO_SECRET_KEY environment variable" in out.stderr


def _deploy_check(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": "a-production-secret-key-" + "x" * 40,
        "RECSITE_VAR_DIR": str(tmp_path),
        "DJANGO_ALLOWED_HOSTS": "recsite.example.com",
        "DJANGO_SECURE_COOKIES": "true",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip


def test_an_https_production_configuration_passes_djangos_deployment_checks(tmp_path):
    https = _deploy_check(
        tmp_path,
        DJANGO_SECURE_SSL_REDIRECT="true",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        DJANGO_SECURE_HSTS_PRELOAD="true",
    )
    cookies_only = _deploy_check(tmp_path)

    assert https.returncode == 0, https.stderr
    assert cookies_only.returncode == 1
    assert sorted(set(re.findall(r"security\.W\d+", cookies_only.stderr))) == [
        "security.W004",
        "security.W008",
    ]


def test_the_embedded_database_passes_the_system_checks_without_a_warning(tmp_path):
    # migrate runs the database checks: the README's first command must not greet a newcomer
    # with a warning about an index option only PostgreSQL uses.
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DJANGO_SECRET_KEY": "probe",
        "RECSITE_VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    assert out.stdout == "System check identified no issues (1 silenced).\n"
    assert "WARNING" not in out.stderr
