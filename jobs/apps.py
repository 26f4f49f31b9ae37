from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs and build artifacts, shared by every app (see the package docstring)."""

    name = "jobs"
    verbose_name = "Jobs"
