"""Structured logs: one JSON object a line (``RECSITE_LOG_FORMAT=json``, the production default).

Every line has ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message`` and
``process``; inside a Celery task also ``task_id`` and ``task_name``; an exception's traceback is
``exc_info``; and whatever a caller passed as ``extra`` (Django's request logs: ``status_code``).
Used by Django's ``LOGGING`` (web processes, commands), by Celery workers (``recsite/celery.py``
puts it on the handlers Celery sets up, so ``--logfile`` keeps working) and by gunicorn's own
error and access logs (:class:`GunicornLogger`, named in ``gunicorn.conf.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import environ
from celery._state import get_current_task
from gunicorn.glogging import Logger
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

FIELDS = ("asctime", "levelname", "name", "message", "process")
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", list(FIELDS))
        kwargs.setdefault("rename_fields", RENAMED)
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        task = get_current_task()
        if task is not None and task.request is not None and task.request.id:
            log_data.setdefault("task_id", task.request.id)
            log_data.setdefault("task_name", task.name)


class AccessJsonFormatter(JsonFormatter):
    """gunicorn's access lines, with the request's parts as fields of their own."""

    ATOMS = {"h": "remote", "m": "method", "U": "path", "q": "query", "s": "status",
             "B": "bytes", "M": "duration_ms", "a": "user_agent"}  # fmt: skip

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        if isinstance(record.args, Mapping):
            for atom, field in self.ATOMS.items():
                value = record.args.get(atom)
                if value not in (None, "-", ""):
                    log_data[field] = value


def log_format() -> str:
    """``RECSITE_LOG_FORMAT`` as the settings resolve it, for gunicorn, which logs before Django
    is set up: "json" unless set, or DEBUG (``DJANGO_DEBUG``) is on."""
    env = environ.Env()
    return env.str(
        "RECSITE_LOG_FORMAT", default="plain" if env.bool("DJANGO_DEBUG", default=False) else "json"
    )


class GunicornLogger(Logger):
    """gunicorn's logger, writing JSON lines where the application does (its handlers, files and
    options are gunicorn's own)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if log_format() == "json":
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())
            for handler in self.access_log.handlers:
                handler.setFormatter(AccessJsonFormatter())
