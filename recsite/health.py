"""Anonymous health endpoints for load balancers and orchestrators.

``/health/live`` says the process serves requests. ``/health/ready`` also checks that the
database answers and the Celery broker accepts connections, and answers 503 naming what failed.
``/health/serving`` says which index and engine builds the answering process serves and whether
it loaded them or inherited them from the gunicorn master (loads nothing; docs/deployment.md).
"""

import logging
import os

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from recommender.services.serving_mode import serving_status

from .celery import app as celery_app

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        if conn.transport_cls == "filesystem":
            # Connecting to the filesystem transport checks nothing; its folder must be writable.
            folder = conn.transport_options["data_folder_out"]
            if not os.access(folder, os.W_OK):
                raise PermissionError(f"broker folder {folder} is not writable")


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            check()
        except Exception as exc:  # noqa: BLE001  (any failure means "not ready"; it is reported)
            logger.warning("Readiness check %s failed: %s", name, exc)
            checks[name] = f"error: {type(exc).__name__}: {exc}"
        else:
            checks[name] = "ok"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


@never_cache
@require_GET
def serving(request: HttpRequest) -> JsonResponse:
    return JsonResponse(serving_status())
