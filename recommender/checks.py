"""System checks (``manage.py check``, and before ``runserver``, ``migrate`` and the import
commands).

The artifact store is checked at startup so a misconfigured store (no bucket, an unreachable
endpoint, a folder that cannot be written) is reported before the first build or request needs
it. gunicorn does not run system checks: ``gunicorn.conf.py`` runs the same check in the master
before it starts serving.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def artifact_store_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from jobs.services.artifact_store import ArtifactStoreError, artifact_store

    try:
        artifact_store().check()
    except ArtifactStoreError as exc:
        return [
            Error(
                f"The artifact store cannot be used: {exc}",
                hint="See docs/deployment.md, 'Artifact store'.",
                id="recommender.E001",
            )
        ]
    return []


@register()
def import_writers_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``RECSITE_IMPORT_WRITERS`` names at least one connection (an import would otherwise fall
    back to one writer without saying so)."""
    writers = settings.RECSITE_IMPORT_WRITERS
    if isinstance(writers, int) and writers >= 1:
        return []
    return [
        Error(
            f"RECSITE_IMPORT_WRITERS: expected a whole number of connections >= 1, got {writers!r}",
            hint="1 writes an events import on one connection; docs/ingestion.md, 'Speed'.",
            id="recommender.E002",
        )
    ]
