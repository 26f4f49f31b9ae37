"""recsite: a self-hosted e-commerce recommendation engine. This package holds the wiring, and
the API conventions every app shares (:mod:`recsite.api`)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
