"""recsite: a self-hosted e-commerce recommendation engine. This package holds the wiring only."""

from .celery import app as celery_app

__all__ = ("celery_app",)
