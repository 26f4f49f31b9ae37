"""Settings for the test suite: base settings plus fast hashing and eager Celery.

The database and broker still come from the environment, so the same suite runs on SQLite
locally and on PostgreSQL + Redis in CI (see scripts/test.sh). The live-worker integration test
switches eager mode off for itself.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
# A folder of files per test process: each of pytest-xdist's workers gets its own (the SQLite
# test database, the index, the artifact store and the model folder live there).
if _worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["RECSITE_VAR_DIR"] = tempfile.mkdtemp(prefix=f"recsite-test-var-{_worker}-")
else:
    os.environ.setdefault("RECSITE_VAR_DIR", tempfile.mkdtemp(prefix="recsite-test-var-"))
# Readable lines in a failing test's captured output (and in its live processes' logs); the
# JSON format has tests of its own.
os.environ.setdefault("RECSITE_LOG_FORMAT", "plain")

from .base import *  # noqa: F403  (the one place a star import is the idiom)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not pytest-django's in-memory default, so a live worker process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # Whitenoise warns about a missing folder.
WHITENOISE_USE_FINDERS = True

# Unit tests embed with the weight-free hashing embedder; tests of the real model override this
# (see tests/conftest.py `real_embedder`).
RECSITE_EMBEDDER = "hashing"
RECSITE_INDEX_REFRESH_SECONDS = 0.0
# Tests revoke and expire tokens by hand; tests of the cache turn it on for themselves.
RECSITE_TOKEN_CACHE_SECONDS = 0.0
# Tests start and stop experiments in the database directly too: read them on every list.
RECSITE_EXPERIMENTS_REFRESH_SECONDS = 0.0
# Tests write relationships with the ORM too: ask every time while there are none.
RECSITE_SOCIAL_EDGES_RECHECK_SECONDS = 0.0
# ... and events: read every network afresh (tests of the network cache turn it on).
RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = 0.0
# The sequential model is off in tests that are not about it (CI time: it would train in every
# train job and evaluation); the tests of it turn it on, with two epochs (or their own sizes).
RECSITE_SEQUENTIAL = "off"
RECSITE_SEQUENTIAL_MAX_EPOCHS = 2
